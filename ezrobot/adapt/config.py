"""Fine-tuning settings (the ``adapt`` config group): an OmegaConf structured config. They only act when the
top-level ``init_from`` names a source run."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

PARTS = ("representation", "dynamics", "reward", "value", "policy")
"""The network's parts, as ``adapt.reuse`` and ``adapt.freeze`` name them (``ezrobot.adapt.parts``)."""


@dataclass
class AdaptConfig:
    """How a run initialised from ``init_from`` uses the source run (the ``adapt`` group)."""

    reuse: List[str] = field(default_factory=lambda: list(PARTS))
    """Parts of the network loaded from the source's checkpoint: ``representation`` (observation encoder and
    SimSiam heads), ``dynamics`` (with the action encoder), ``reward`` (value-prefix or reward head),
    ``value`` (prediction trunk and value head) and ``policy`` (policy head); the others keep their fresh
    initialisation."""
    freeze: List[str] = field(default_factory=list)
    """Parts that get no gradient step during the first ``freeze_updates`` updates (their weights stay as
    loaded; BatchNorm running statistics still update)."""
    freeze_updates: int = 0
    """Updates during which the ``freeze`` parts are frozen; 0 keeps them frozen for the whole run."""
    lr_representation: float = 1.0
    """Learning-rate multiplier of the representation part (times ``optim.lr`` and its schedule)."""
    lr_dynamics: float = 1.0
    """Learning-rate multiplier of the dynamics part."""
    lr_reward: float = 1.0
    """Learning-rate multiplier of the reward part."""
    lr_value: float = 1.0
    """Learning-rate multiplier of the value part."""
    lr_policy: float = 1.0
    """Learning-rate multiplier of the policy part."""
    reuse_replay: bool = False
    """Copy the source's replay (from the same checkpoint) into this run's replay before the first step, so
    updates can start at once; the ring is then allocated at ``replay.capacity`` and the oldest source
    transitions are overwritten first."""
    relabel: bool = True
    """With ``reuse_replay``: recompute the copied transitions' rewards with this run's task from the physics
    states the source stored (tasks that support relabelling); a source replay without them is an error
    unless ``relabel=false``, which keeps the source's rewards."""
    start_transitions: int = 0
    """Agent steps before the first update of a fine-tune run, collected by the searched policy of the loaded
    network (no random warm-up); -1 uses ``train.start_transitions`` random steps as a run from scratch."""

    def validate(self) -> None:
        """Raise ValueError naming the first field outside its allowed values."""
        for name in ("reuse", "freeze"):
            bad = [p for p in getattr(self, name) if p not in PARTS]
            if bad:
                raise ValueError(f"{name}={list(getattr(self, name))} names {bad[0]!r}, which is not a part; choose "
                                 f"from {', '.join(PARTS)}")
        if self.freeze_updates < 0:
            raise ValueError(f"freeze_updates={self.freeze_updates!r} must be >= 0 (0: the whole run)")
        for part in PARTS:
            value = getattr(self, f"lr_{part}")
            if not value >= 0:
                raise ValueError(f"lr_{part}={value!r} must be >= 0 (a multiplier of optim.lr)")
        if self.start_transitions < -1:
            raise ValueError(f"start_transitions={self.start_transitions!r} must be >= 0, or -1 for "
                             "train.start_transitions")

    def lr_scales(self) -> dict:
        """``{part: learning-rate multiplier}``."""
        return {"representation": float(self.lr_representation), "dynamics": float(self.lr_dynamics),
                "reward": float(self.lr_reward), "value": float(self.lr_value), "policy": float(self.lr_policy)}
