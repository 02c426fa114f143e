"""The network's parts by parameter name, and what fine-tuning does with them: load the reused parts from a
source's weights, give each part its learning rate, freeze parts for a number of updates.

The parts (``adapt.config.PARTS``) split ``EfficientZeroNet``'s parameter names by prefix:
``representation.*`` and ``simsiam.*`` -> representation; ``dynamics.*`` and ``action_encoder.*`` ->
dynamics; ``reward_head.*`` -> reward; ``prediction.*`` -> policy when the name holds ``policy``, else value
(the prediction trunk trains with the value); ``critic.*`` (the Q ensemble) -> value."""
from __future__ import annotations

from typing import Dict, Iterable, List, Sequence

import torch

from ezrobot.adapt.config import PARTS

PREFIXES = {"representation": ("representation.", "simsiam."), "dynamics": ("dynamics.", "action_encoder."),
            "reward": ("reward_head.",), "value": ("prediction.", "critic."), "policy": ("prediction.",)}
"""Parameter-name prefixes of each part (value and policy split ``prediction.*`` by the word policy)."""


def part_of(name: str) -> str:
    """The part a parameter (or buffer) name belongs to.

    Raises:
        ValueError: a name outside every part (a model with other modules).
    """
    if name.startswith("prediction."):
        return "policy" if "policy" in name else "value"
    for part in PARTS:
        if name.startswith(PREFIXES[part]):
            return part
    raise ValueError(f"parameter {name!r} belongs to none of the parts {', '.join(PARTS)}")


def check_parts(model: torch.nn.Module, weights: Dict[str, torch.Tensor], reuse: Sequence[str],
                source: str) -> List[str]:
    """The names of ``model``'s entries in the ``reuse`` parts, each present in ``weights`` with its shape.

    Raises:
        ValueError: one line naming ``source`` and the first reused entry that is missing or shaped otherwise.
    """
    own = model.state_dict()
    names = [n for n in own if part_of(n) in reuse]
    missing = [n for n in names if n not in weights]
    shaped = [n for n in names if n in weights and tuple(weights[n].shape) != tuple(own[n].shape)]
    if missing or shaped:
        bad = (missing or shaped)[0]
        what = "has no" if missing else f"has {tuple(weights[bad].shape)} for"
        raise ValueError(f"init_from={source!r} {what} {bad} ({part_of(bad)} part; this model needs "
                         f"{tuple(own[bad].shape)}): it was trained with other model.* settings; set them as the "
                         f"source's config.yaml has them, or leave {part_of(bad)} out of adapt.reuse")
    return names


def load_parts(model: torch.nn.Module, weights: Dict[str, torch.Tensor], reuse: Sequence[str],
               source: str) -> List[str]:
    """Copy the entries of ``weights`` (a source's ``state_dict``) that belong to the ``reuse`` parts into
    ``model`` (checked by :func:`check_parts`); the rest keep their values. Returns the names loaded."""
    names = check_parts(model, weights, reuse, source)
    merged = dict(model.state_dict())
    merged.update({n: weights[n] for n in names})
    model.load_state_dict(merged)
    return names


def parameter_groups(model: torch.nn.Module, lr_scales: Dict[str, float]) -> List[dict]:
    """Optimizer parameter groups, one per part, each with ``part`` and ``lr_scale`` entries."""
    groups = {part: [] for part in PARTS}
    for name, param in model.named_parameters():
        groups[part_of(name)].append(param)
    return [{"params": params, "part": part, "lr_scale": float(lr_scales.get(part, 1.0))}
            for part, params in groups.items() if params]


def frozen_parameters(model: torch.nn.Module, parts: Iterable[str]) -> List[torch.nn.Parameter]:
    """The parameters of ``parts``."""
    parts = set(parts)
    return [p for name, p in model.named_parameters() if part_of(name) in parts]
