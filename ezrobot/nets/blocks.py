"""Building blocks shared by the conv and MLP families: norms, residual blocks, head MLPs, min-max scaling."""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn


def make_norm(kind: str, features: int, spatial: bool) -> nn.Module:
    """A normalisation layer.

    Args:
        kind: ``batch``, ``layer`` (LayerNorm; GroupNorm(1, C) for feature maps) or ``none``.
        features: Channels (``spatial``) or features.
        spatial: True for ``[B, C, H, W]`` inputs, False for ``[B, F]``.
    """
    if kind == "batch":
        return nn.BatchNorm2d(features) if spatial else nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.GroupNorm(1, features) if spatial else nn.LayerNorm(features)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r} is unknown; choose one of batch, layer, none")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with padding 1."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)


class ResidualBlock(nn.Module):
    """Post-activation residual block: relu(x' + n2(conv(relu(n1(conv(x)))))).

    With ``stride > 1`` or a channel change, the skip path is a stride-``stride`` 3x3 convolution
    (EfficientZero's downsample block).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        norm: ``batch`` | ``layer`` | ``none``.
        stride: Stride of the first convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch", stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.norm1 = make_norm(norm, out_channels, spatial=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.norm2 = make_norm(norm, out_channels, spatial=True)
        self.skip = None
        if stride != 1 or in_channels != out_channels:
            self.skip = conv3x3(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W] -> [B, C_out, H', W']``."""
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        skip = x if self.skip is None else self.skip(x)
        return torch.relu(out + skip)


class ResidualMLPBlock(nn.Module):
    """Pre-norm residual MLP block: x + W2 relu(W1 norm(x)) (EZ-V2 proprio).

    Args:
        dim: Input and output features.
        hidden: Hidden features.
        norm: ``layer`` (paper) | ``batch`` | ``none``.
    """

    def __init__(self, dim: int, hidden: int, norm: str = "layer"):
        super().__init__()
        self.norm = make_norm(norm, dim, spatial=False)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, F] -> [B, F]``."""
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


def head_mlp(in_features: int, hidden: Sequence[int], out_features: int, norm: str,
             zero_init_last: bool) -> nn.Sequential:
    """Linear -> norm -> ReLU for each hidden size, then a Linear output layer.

    Args:
        in_features: Input features.
        hidden: Hidden sizes (may be empty).
        out_features: Output size (support bins or policy width).
        norm: ``batch`` | ``layer`` | ``none``.
        zero_init_last: Zero the output layer's weight and bias (value, reward and policy heads).
    """
    layers: List[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), make_norm(norm, size, spatial=False), nn.ReLU()]
        width = size
    last = nn.Linear(width, out_features)
    if zero_init_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


def min_max_normalize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Scale each sample of ``x [B, ...]`` to [0, 1] over all its non-batch entries (MuZero).

    Computed in float32 (also under autocast); a sample whose range is below ``eps`` gets ``eps`` added to
    its range. Returns float32 of the same shape (and memory format).
    """
    x = x.float()
    dims = tuple(range(1, x.dim()))
    low = x.amin(dim=dims, keepdim=True)
    scale = x.amax(dim=dims, keepdim=True) - low
    scale = torch.where(scale < eps, scale + eps, scale)
    return (x - low) / scale
