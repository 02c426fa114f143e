"""Distributed settings (the ``distributed`` config group): an OmegaConf structured config."""
from __future__ import annotations

from dataclasses import dataclass

from ezrobot.schema import choice


@dataclass
class DistributedConfig:
    """How a run is spread over processes (the ``distributed`` group; ``distributed=ray`` selects Ray)."""

    backend: str = choice("none", ("none", "ray"))
    """``none``: the embedded single-process trainer. ``ray``: self-play actors, reanalyze workers and the
    replay owner are Ray actors beside the learner (the ``ezrobot train`` process)."""
    num_actors: int = 2
    """Self-play actors; each steps ``train.num_envs`` environments with one batched search per agent step."""
    num_reanalyzers: int = 1
    """Reanalyze workers building learner batches (targets, fresh searches with the target network); 0: the
    learner builds its own batches."""
    address: str = ""
    """Ray cluster to join (``auto`` or ``HOST:PORT``, as printed by ``ray start --head``); empty: start a
    local Ray instance with one CPU per actor and reanalyze worker."""
    max_lead: int = 0
    """Agent steps the actors may collect beyond what ``train.replay_ratio`` lets the learner have consumed
    (they wait above it); 0: two agent steps per environment of every actor."""
    batches_in_flight: int = 1
    """Batches each reanalyze worker may be building ahead of the learner (more hides latency; each is made
    from priorities and a target network that many updates old)."""

    def validate(self) -> None:
        """Raise ValueError naming the first field outside its allowed range."""
        for name in ("num_actors", "batches_in_flight"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        for name in ("num_reanalyzers", "max_lead"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")
        if self.address and self.backend != "ray":
            raise ValueError(f"address={self.address!r} is read only with distributed=ray")

    def lead(self, num_envs: int) -> int:
        """The effective :attr:`max_lead` in agent steps."""
        return int(self.max_lead) or 2 * num_envs * int(self.num_actors)
