"""The owner of the replay and the counters in a distributed run (one Ray actor).

Every transition enters the replay through :meth:`ReplayOwner.apply`, which also advances the env-step and
agent-step counters in the same call: Ray runs one method of an actor at a time, so what the replay holds and
what the counters say can never disagree, and a checkpoint (:meth:`ReplayOwner.snapshot`) takes both at once.
A self-play actor that dies loses only the agent steps it had not yet applied (nothing is counted for
them); the restarted actor registers again (:meth:`ReplayOwner.register_actor`) and its first
``start_episodes`` closes its environments' unfinished episodes as truncated, so nothing already in the
replay is lost. Calls still queued from a dead incarnation are ignored.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ezrobot.replay.buffer import Replay
from ezrobot.replay.config import ReplayConfig
from ezrobot.replay.trajectory import Trajectory
from ezrobot.types import EpisodeStats

COUNTERS = ("env_steps", "agent_steps", "episodes", "train_returns", "train_terms")
"""The counters the owner keeps (the learner keeps ``updates``)."""


class ReplayOwner:
    """The replay buffer, the collection counters, the replay-ratio throttle and the latest weights.

    Args:
        replay_cfg: The sized replay settings.
        spec: The environments' ``EnvSpec``.
        replay_kwargs: ``Replay``'s keyword arguments (``num_envs`` is the envs of all actors together).
        envs_per_actor: ``train.num_envs``: actor i writes env ids ``i * envs_per_actor ...``.
        budget: Agent-step budget of the run; steps beyond it are refused.
        start_transitions: Agent steps before the first update.
        replay_ratio: Updates per agent step.
        lead: Agent steps the actors may collect beyond what the updates have consumed.
        seed: Seed of the sampling generator.
    """

    def __init__(self, replay_cfg: ReplayConfig, spec, replay_kwargs: Dict[str, Any], envs_per_actor: int,
                 budget: int, start_transitions: int, replay_ratio: float, lead: int, seed: int):
        self.replay = Replay(replay_cfg, spec, **replay_kwargs)
        self.envs_per_actor, self.budget = envs_per_actor, budget
        self.start, self.ratio, self.lead = start_transitions, replay_ratio, lead
        self.rng = np.random.default_rng(seed)
        self.counters: Dict[str, Any] = {"env_steps": 0, "agent_steps": 0, "episodes": 0, "train_returns": [],
                                         "train_terms": []}
        self.updates = 0
        self.incarnations: Dict[int, int] = {}
        self.nodes: Dict[str, str] = {}
        self.ignored_calls = 0
        self.weights: Dict[str, Tuple[int, list]] = {}

    # ------------------------------------------------------------------------------------- actors
    def register_actor(self, index: int, node: str) -> int:
        """A self-play actor (re)starting on Ray node ``node``: returns its incarnation (0 the first time, then
        1, 2, ...)."""
        self.incarnations[index] = self.incarnations.get(index, -1) + 1
        self.nodes[f"actor{index}"] = node
        return self.incarnations[index]

    def register_reanalyzer(self, index: int, node: str) -> None:
        """A reanalyze worker (re)starting on Ray node ``node``."""
        self.nodes[f"reanalyzer{index}"] = node

    def apply(self, index: int, incarnation: int, calls: Sequence[tuple], env_steps: int, agent_steps: int,
              finished: Sequence[EpisodeStats]) -> Dict[str, Any]:
        """Write one agent step of actor ``index`` (its recorded replay calls) and count it.

        Args:
            calls: ``(method, args, kwargs)`` of ``Replay.start_episodes`` / ``add`` / ``end_episodes`` with
                the actor's own env ids (0 .. envs_per_actor - 1).
            env_steps, agent_steps: What the step took.
            finished: The episodes it finished.

        Returns:
            :meth:`status` after the step; ``applied`` False when the step was refused (budget spent, or a
            call of a dead incarnation).
        """
        if incarnation != self.incarnations.get(index) or (agent_steps and self.done):
            self.ignored_calls += 1
            return {**self.status(), "applied": False}
        offset = index * self.envs_per_actor
        for method, args, kwargs in calls:
            args = (np.asarray(args[0]) + offset,) + tuple(args[1:])
            getattr(self.replay, method)(*args, **kwargs)
        c = self.counters
        c["env_steps"] += int(env_steps)
        c["agent_steps"] += int(agent_steps)
        c["episodes"] += len(finished)
        c["train_returns"] = (c["train_returns"] + [e.ret for e in finished])[-20:]
        c["train_terms"] = (c["train_terms"] + [e.terms for e in finished if e.terms])[-20:]
        return {**self.status(), "applied": True}

    @property
    def done(self) -> bool:
        """The agent-step budget is spent."""
        return self.counters["agent_steps"] >= self.budget

    def updates_allowed(self) -> int:
        """Updates the replay ratio allows after the agent steps collected so far (as the embedded trainer)."""
        learned = self.counters["agent_steps"] - self.start
        if learned < 0 or self.replay.num_sampleable == 0:
            return 0
        return int(math.floor(learned * self.ratio))

    def may_collect(self) -> bool:
        """Whether actors may take another agent step: during the warm-up always; then only while the
        learner is at most ``lead`` agent steps' worth of updates behind."""
        if self.counters["agent_steps"] < self.start:
            return True
        return self.updates_allowed() - self.updates <= self.lead * self.ratio

    def status(self) -> Dict[str, Any]:
        """Counters, updates, replay sizes, weight versions and the throttle decision."""
        return {**{k: self.counters[k] for k in COUNTERS}, "updates": self.updates, "done": self.done,
                "may_collect": self.may_collect(), "updates_allowed": self.updates_allowed(),
                "replay_transitions": len(self.replay), "replay_insertions": self.replay.num_insertions,
                "replay_sampleable": self.replay.num_sampleable, "replay_nbytes": self.replay.nbytes,
                "versions": {k: v[0] for k, v in self.weights.items()},
                "actor_restarts": int(sum(self.incarnations.values())), "ignored_calls": self.ignored_calls,
                "nodes": len(set(self.nodes.values()))}

    # ------------------------------------------------------------------------------------ weights
    def set_weights(self, kind: str, version: int, ref: list) -> None:
        """Publish weights ``kind`` (``selfplay`` or ``target``): ``ref`` is ``[ObjectRef]`` of a state dict."""
        self.weights[kind] = (version, ref)

    def get_weights(self, kind: str) -> Tuple[int, Optional[list]]:
        """``(version, [ObjectRef])`` of the newest weights ``kind`` (``(-1, None)`` before the first)."""
        return self.weights.get(kind, (-1, None))

    # ------------------------------------------------------------------------- sampling (learner side)
    def sample(self, batch_size: int, beta: float) -> Tuple[np.ndarray, np.ndarray]:
        """Prioritized positions and importance weights (``Replay.sample``)."""
        return self.replay.sample(batch_size, beta, self.rng)

    def gather(self, positions: np.ndarray, seed: int) -> Trajectory:
        """``Replay.gather`` with a generator seeded ``seed`` (random actions past episode ends)."""
        return self.replay.gather(positions, np.random.default_rng(seed))

    def content_keys(self, positions: np.ndarray) -> np.ndarray:
        return self.replay.content_keys(positions)

    def stacked_obs(self, positions: np.ndarray) -> np.ndarray:
        return self.replay.stacked_obs(positions)

    def capacity(self) -> int:
        return self.replay.capacity

    def update_priorities(self, positions: np.ndarray, priorities: np.ndarray, updates: int) -> None:
        """New priorities from the learner, with its update count (the throttle reads it)."""
        self.replay.update_priorities(positions, priorities)
        self.updates = max(self.updates, int(updates))

    # --------------------------------------------------------------------------------- checkpoints
    def snapshot(self) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """``(counters, replay state)`` taken together (no agent step can fall between them)."""
        return {k: self.counters[k] for k in COUNTERS}, self.replay.state_dict(copy=True)

    def restore(self, counters: Dict[str, Any], replay_state: Optional[Dict[str, Any]], updates: int) -> None:
        """Continue from a checkpoint's counters and replay (before any actor registers)."""
        self.counters.update({k: counters[k] for k in COUNTERS if k in counters})
        self.updates = int(updates)
        if replay_state is not None:
            self.replay.load_state_dict(replay_state)
        live = self.replay.live_env_ids
        if len(live):
            self.replay.end_episodes(live)  # their environments are gone: truncated, as after an embedded resume

    def live_env_ids(self) -> List[int]:
        return self.replay.live_env_ids.tolist()
