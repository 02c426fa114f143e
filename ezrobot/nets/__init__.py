"""EfficientZero networks: config, conv (pixels) and MLP (vectors) families, augmentation helpers."""
from __future__ import annotations

import torch

from ezrobot.nets.config import ModelConfig, resolve_preset
from ezrobot.nets.model import (EfficientZeroNet, build_model, parameter_breakdown, parameter_count)


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient flowing back through ``x`` by ``scale``.

    Args:
        x: Any tensor.
        scale: Gradient factor (EfficientZero: 0.5 at each dynamics step).
    """
    return x * scale + x.detach() * (1.0 - scale)


__all__ = ["ModelConfig", "resolve_preset", "EfficientZeroNet", "build_model", "parameter_count",
           "parameter_breakdown", "scale_gradient"]
