"""Image augmentation for the consistency views (docs/REFERENCES.md §1): random shift and intensity, batched on any
device.

Random shift = replicate-pad by ``pad`` pixels and crop back at a random offset. On CPU each image is one
slice copy out of the padded batch (which also converts it to float when asked); on other devices two
clamped index gathers do it in two kernels. Intensity = multiply by 1 + scale * clip(N(0, 1), -2, 2), one
factor per image, fused with the uint8 -> [0, 1] scaling.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def shift_offsets(n: int, pad: int, generator: Optional[torch.Generator] = None,
                  device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """Independent integer (row, column) offsets in [-pad, pad]: int64 ``[n, 2]``."""
    if pad < 0:
        raise ValueError(f"random_shift pad={pad!r} must be >= 0")
    return torch.randint(-pad, pad + 1, (n, 2), generator=generator, device=device)


def shift_by_gather(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``out[n, :, y, x] = images[n, :, clamp(y + dy_n), clamp(x + dx_n)]`` by two index gathers."""
    n, c, h, w = images.shape
    rows = (torch.arange(h, device=images.device)[None, :] + offsets[:, :1]).clamp(0, h - 1)
    cols = (torch.arange(w, device=images.device)[None, :] + offsets[:, 1:]).clamp(0, w - 1)
    out = torch.gather(images, 2, rows[:, None, :, None].expand(n, c, h, w))
    return torch.gather(out, 3, cols[:, None, None, :].expand(n, c, h, w))


def shift_by_slices(images: torch.Tensor, offsets: torch.Tensor, pad: int,
                    dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """The same translation as :func:`shift_by_gather`, as one crop of the replicate-padded batch per image
    (``|offset| <= pad``), written straight into a ``dtype`` output (default: the input's)."""
    n, c, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate") if pad > 0 else images
    out = torch.empty((n, c, h, w), dtype=dtype or images.dtype, device=images.device)
    for i, (dy, dx) in enumerate((offsets + pad).tolist()):
        out[i].copy_(padded[i, :, dy:dy + h, dx:dx + w])
    return out


def shift(images: torch.Tensor, offsets: torch.Tensor, pad: int, dtype: Optional[torch.dtype] = None
          ) -> torch.Tensor:
    """Translate ``images [N, C, H, W]`` by ``offsets [N, 2]`` (|offset| <= pad) with edge replication, as a
    ``dtype`` tensor (default: the input's): slice crops on CPU, index gathers elsewhere."""
    if images.device.type == "cpu":
        return shift_by_slices(images, offsets, pad, dtype)
    return shift_by_gather(images, offsets).to(dtype or images.dtype)


def random_shift(images: torch.Tensor, pad: int = 4, generator: Optional[torch.Generator] = None
                 ) -> torch.Tensor:
    """Shift each image ``[N, C, H, W]`` by independent integer offsets in [-pad, pad] with edge replication.

    Works on any dtype (uint8 stays uint8) and device; ``generator`` must live on that device.
    """
    return shift(images, shift_offsets(images.shape[0], pad, generator, images.device), pad)


def intensity_factors(n: int, scale: float, generator: Optional[torch.Generator] = None,
                      device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """Per-image factors 1 + scale * clip(N(0, 1), -2, 2): float32 ``[n]``."""
    noise = torch.randn((n,), generator=generator, device=device)
    return 1.0 + scale * noise.clamp(-2.0, 2.0)


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
    offsets = shift_offsets(images.shape[0], pad, generator, images.device)
    images = shift(images, offsets, pad, torch.float32)
    factors = intensity_factors(images.shape[0], intensity_scale, generator, images.device)
    if obs.dtype == torch.uint8:
        factors = factors / 255.0
    images.mul_(factors[:, None, None, None])
    return images.reshape(*lead, *obs.shape[-3:])
