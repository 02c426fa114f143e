"""Prioritized replay settings (the ``replay`` config group): an OmegaConf structured config."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReplayConfig:
    """Prioritized replay settings (the ``replay`` group)."""

    capacity: int = 100_000
    """Ring size in positions (one stored observation each, i.e. about one transition). A run allocates at most
    what its budget can fill; one that does not fit in the available memory is refused."""
    alpha: float = 0.6
    """Priority exponent: P(i) ∝ p_i^alpha (0 gives uniform sampling)."""
    beta_start: float = 0.4
    """Importance-sampling exponent at the first update, annealed linearly to ``beta_end``."""
    beta_end: float = 1.0
    """Importance-sampling exponent at the last update."""
    priority_eps: float = 1e-6
    """Floor added to |v - z| by the learner; priorities below it are raised to it."""
    prioritized: bool = True
    """Sample by priority with importance weights; False samples uniformly with unit weights."""
    store_physics_states: bool = True
    """Tasks that support reward relabelling: keep each step's physics states (float64, one row per control
    step) beside the transition, so a run fine-tuned from this one can relabel the rewards with its own task
    (``adapt.relabel``). Off: nothing more is stored."""

    def validate(self) -> None:
        """Raise ValueError naming the first field outside its allowed range."""
        if int(self.capacity) < 2:
            raise ValueError(f"capacity={self.capacity!r} must be an integer >= 2")
        if not self.alpha >= 0:
            raise ValueError(f"alpha={self.alpha!r} must be >= 0")
        for name in ("beta_start", "beta_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be in [0, 1]")
        if not self.priority_eps > 0:
            raise ValueError(f"priority_eps={self.priority_eps!r} must be > 0")
