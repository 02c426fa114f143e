"""Numeric precision of the forward passes: one bfloat16 autocast switch (``train.bf16``) shared by the
learner's forward passes and the target network's bootstrap values."""
from __future__ import annotations

import contextlib

import torch


def bf16_autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on ``device`` when ``enabled`` (``train.bf16``), else a no-op context."""
    if enabled:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
