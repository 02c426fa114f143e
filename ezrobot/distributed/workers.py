"""The two worker roles of a distributed run, each a Ray actor (``ezrobot.distributed.launch`` places them).

:class:`SelfPlayWorker` runs the embedded ``SelfPlay`` unchanged over its own environments, with a replay
stand-in (:class:`RecordingReplay`) that records the replay calls of each agent step; the step's calls go to
the replay owner in one ``apply`` call. :class:`ReanalyzeWorker` runs the embedded ``Reanalyzer`` unchanged
over :class:`RemoteReplay`, which forwards the replay reads to the owner. Both receive weights through
Ray's object store: the owner keeps a reference to the newest state dict of each kind with a version
number, and a worker fetches the state dict only when the version changed.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Tuple

import numpy as np
import torch

from ezrobot.agent import SearchAgent
from ezrobot.config import Config, Derived, importance_beta, start_transitions, visit_temperature
from ezrobot.envs import make_env
from ezrobot.factory import frozen_copy, seed_everything
from ezrobot.nets import build_model
from ezrobot.reanalyze import Reanalyzer
from ezrobot.replay.trajectory import Trajectory
from ezrobot.selfplay import RandomActor, SelfPlay
from ezrobot.types import TrainBatch

ACTOR_SEED_STRIDE = 10_000
"""Environment seeds of actor i's incarnation r start at ``seed + STRIDE * (1 + i) + 100 * STRIDE * r``: no
two actors, and no restarted actor, replay the episodes of another."""


def _ray():
    import ray  # imported only in distributed runs (the ``ray`` extra)

    return ray


class RecordingReplay:
    """The replay interface ``SelfPlay`` writes to, recording each call for the owner."""

    def __init__(self):
        self.calls: List[Tuple[str, tuple, dict]] = []

    def start_episodes(self, env_ids, obs) -> None:
        self.calls.append(("start_episodes", (np.asarray(env_ids), np.asarray(obs)), {}))

    def end_episodes(self, env_ids) -> None:
        self.calls.append(("end_episodes", (np.asarray(env_ids),), {}))

    def add(self, env_ids, *args, **kwargs) -> None:
        self.calls.append(("add", (np.asarray(env_ids),) + args, kwargs))

    def take(self) -> List[Tuple[str, tuple, dict]]:
        """The calls recorded since the last ``take``."""
        calls, self.calls = self.calls, []
        return calls


def _load_weights(model: torch.nn.Module, owner, kind: str, have: int) -> int:
    """Load the owner's newest weights ``kind`` into ``model`` when newer than version ``have``."""
    ray = _ray()
    version, ref = ray.get(owner.get_weights.remote(kind))
    if ref is not None and version != have:
        model.load_state_dict(ray.get(ref[0]))
        return version
    return have


class SelfPlayWorker:
    """A self-play actor: ``train.num_envs`` environments, one batched search per agent step.

    Args:
        cfg: The run configuration.
        derived: Its derived values (the temperature schedule).
        index: This actor's index (its env ids in the replay follow from it).
        owner: The replay owner's actor handle.
    """

    def __init__(self, cfg: Config, derived: Derived, index: int, owner):
        ray = _ray()
        torch.set_num_threads(cfg.threads if cfg.threads > 0 else 1)
        self.cfg, self.derived, self.index, self.owner = cfg, derived, index, owner
        node = ray.get_runtime_context().get_node_id()
        self.incarnation = ray.get(owner.register_actor.remote(index, node))
        seed = cfg.seed + ACTOR_SEED_STRIDE * (1 + index) + 100 * ACTOR_SEED_STRIDE * self.incarnation
        seed_everything(seed)
        made = [make_env(cfg.task, cfg.env, seed=seed + i, train=True) for i in range(cfg.train.num_envs)]
        spec = made[0][1]
        continuous = spec.action_type == "continuous"
        policy_size = cfg.search.num_sampled_actions if continuous else spec.num_actions
        self.model = frozen_copy(build_model(cfg.model, spec, device=torch.device("cpu")))
        self.agent = SearchAgent(cfg.search, continuous, spec.discount, torch.device("cpu"))
        self.recorder = RecordingReplay()
        self.selfplay = SelfPlay([env for env, _ in made], spec, self.recorder, seed=seed)
        self.random_actor = RandomActor(spec, policy_size, np.random.default_rng(seed + 1))
        self.rng = np.random.default_rng(seed + 2)
        self.start = start_transitions(cfg)
        self.version = -1

    def run(self) -> int:
        """Collect until the owner reports the budget spent; returns the agent steps this incarnation applied."""
        ray = _ray()
        status = ray.get(self.owner.apply.remote(self.index, self.incarnation, self.recorder.take(), 0, 0, []))
        applied = 0
        while not status["done"]:
            while not status["may_collect"] and not status["done"]:
                time.sleep(0.01)  # the learner is behind: wait for its updates
                status = ray.get(self.owner.status.remote())
            if status["done"]:
                break
            if status["agent_steps"] >= self.start:
                if status["versions"].get("selfplay", -1) != self.version:
                    self.version = _load_weights(self.model, self.owner, "selfplay", self.version)
                act = self.agent.actor(self.model, self.rng, train=True,
                                       temperature=visit_temperature(self.cfg, self.derived, status["updates"]))
            else:
                act = self.random_actor
            env_steps, finished = self.selfplay.step(act)
            status = ray.get(self.owner.apply.remote(self.index, self.incarnation, self.recorder.take(),
                                                     env_steps, self.cfg.train.num_envs, finished))
            applied += self.cfg.train.num_envs if status["applied"] else 0
        return applied


class RemoteReplay:
    """The replay reads of ``Reanalyzer`` (``gather``, ``content_keys``, ``stacked_obs``, ``capacity``),
    forwarded to the owner."""

    def __init__(self, owner):
        self.owner = owner
        self.capacity = int(_ray().get(owner.capacity.remote()))

    def gather(self, positions: np.ndarray, rng: np.random.Generator) -> Trajectory:
        sample = _ray().get(self.owner.gather.remote(positions, int(rng.integers(2**62))))
        return dataclasses.replace(sample, **{f.name: np.array(getattr(sample, f.name))  # writable copies
                                              for f in dataclasses.fields(sample)
                                              if isinstance(getattr(sample, f.name), np.ndarray)})

    def content_keys(self, positions: np.ndarray) -> np.ndarray:
        return np.array(_ray().get(self.owner.content_keys.remote(positions)))

    def stacked_obs(self, positions: np.ndarray) -> np.ndarray:
        return np.array(_ray().get(self.owner.stacked_obs.remote(positions)))


def batch_to(batch: TrainBatch, device: torch.device) -> TrainBatch:
    """``batch`` with every tensor moved to ``device``."""
    return dataclasses.replace(batch, **{f.name: getattr(batch, f.name).to(device, non_blocking=True)
                                         for f in dataclasses.fields(batch)
                                         if isinstance(getattr(batch, f.name), torch.Tensor)})


class ReanalyzeWorker:
    """Builds learner batches: prioritized positions from the owner, targets and fresh searches with the
    target network (the embedded ``Reanalyzer`` over :class:`RemoteReplay`).

    Args:
        cfg: The run configuration.
        derived: Its derived values.
        index: This worker's index (its seed).
        owner: The replay owner's actor handle.
    """

    def __init__(self, cfg: Config, derived: Derived, index: int, owner):
        ray = _ray()
        torch.set_num_threads(cfg.threads if cfg.threads > 0 else 1)
        self.cfg, self.derived, self.owner = cfg, derived, owner
        ray.get(owner.register_reanalyzer.remote(index, ray.get_runtime_context().get_node_id()))
        seed = cfg.seed + 7_919 * (1 + index) + int(time.time_ns() % 1_000_003)
        seed_everything(seed)
        self.rng = np.random.default_rng(seed)
        env, spec = make_env(cfg.task, cfg.env, seed=seed, train=True)
        env.close()
        device = torch.device("cpu")
        self.target = frozen_copy(build_model(cfg.model, spec, device=device))
        agent = SearchAgent(cfg.search, spec.action_type == "continuous", spec.discount, device)
        self.reanalyzer = Reanalyzer(cfg, spec, derived, RemoteReplay(owner), self.target, agent, device)
        self.version = -1

    def make_batch(self, updates: int) -> Tuple[np.ndarray, TrainBatch, Dict[str, float]]:
        """``(positions, batch, metrics)`` of one learner batch, with the newest target network."""
        ray = _ray()
        version = _load_weights(self.target, self.owner, "target", self.version)
        if version != self.version:
            self.version = version
            self.reanalyzer.target_changed()
        beta = importance_beta(self.cfg, self.derived, updates)
        positions, weights = (np.array(a) for a in ray.get(self.owner.sample.remote(self.cfg.train.batch_size, beta)))
        batch, metrics = self.reanalyzer.make_batch(positions, weights, updates, self.rng)
        return positions, batch, metrics
