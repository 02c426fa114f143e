"""Image augmentation for the consistency views (REFERENCE §1): random shift and intensity, batched on any
device.

Random shift = replicate-pad by ``pad`` pixels and crop back at a random offset, done here by clamped index
gathers (no padded copy). Intensity = multiply by 1 + scale * clip(N(0, 1), -2, 2), one factor per image.
"""
from __future__ import annotations

from typing import Optional

import torch


def random_shift(images: torch.Tensor, pad: int = 4, generator: Optional[torch.Generator] = None
                 ) -> torch.Tensor:
    """Shift each image ``[N, C, H, W]`` by independent integer offsets in [-pad, pad] with edge replication.

    Works on any dtype (uint8 stays uint8) and device; ``generator`` must live on that device.
    """
    if pad < 0:
        raise ValueError(f"random_shift pad={pad!r} must be >= 0")
    n, c, h, w = images.shape
    offsets = torch.randint(-pad, pad + 1, (n, 2), generator=generator, device=images.device)
    rows = (torch.arange(h, device=images.device)[None, :] + offsets[:, :1]).clamp(0, h - 1)
    cols = (torch.arange(w, device=images.device)[None, :] + offsets[:, 1:]).clamp(0, w - 1)
    out = torch.gather(images, 2, rows[:, None, :, None].expand(n, c, h, w))
    return torch.gather(out, 3, cols[:, None, None, :].expand(n, c, h, w))


def random_intensity(images: torch.Tensor, scale: float = 0.05,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Multiply each float image ``[N, ...]`` by 1 + scale * clip(N(0, 1), -2, 2)."""
    noise = torch.randn((images.shape[0],) + (1,) * (images.dim() - 1), generator=generator,
                        device=images.device, dtype=images.dtype)
    return images * (1.0 + scale * noise.clamp(-2.0, 2.0))


def augment_observations(obs: torch.Tensor, pad: int = 4, intensity_scale: float = 0.05,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Random shift then intensity on stacked pixel observations.

    Each observation (the last three dims ``[C, H, W]``, all stacked frames together) gets its own shift
    and intensity factor; any leading dims (e.g. ``[B, K+1]``) are treated as batch.

    Args:
        obs: ``[*N, C, H, W]`` uint8 (or float in [0, 1]).
        pad: Maximum shift in pixels (paper 4).
        intensity_scale: Intensity noise scale (paper 0.05).
        generator: Optional torch generator on ``obs.device``.

    Returns:
        float32 ``[*N, C, H, W]`` scaled to [0, 1] before the intensity factor (the model uses floats as
        given).
    """
    if obs.dim() < 4:
        raise ValueError(f"augment_observations needs [*N, C, H, W] images, got shape {tuple(obs.shape)}")
    lead = obs.shape[:-3]
    images = obs.reshape(-1, *obs.shape[-3:])
    images = random_shift(images, pad, generator)
    images = images.float() / 255.0 if obs.dtype == torch.uint8 else images.float()
    images = random_intensity(images, intensity_scale, generator)
    return images.reshape(*lead, *obs.shape[-3:])
