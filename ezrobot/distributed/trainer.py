"""The learner of a distributed run (``distributed=ray``): the ``ezrobot train`` process itself, on the GPU
when there is one. It takes batches from the reanalyze workers, steps the optimizer, sends the new priorities
to the replay owner and publishes weights through Ray's object store (self-play weights every
``train.selfplay_update_interval`` updates, target weights every ``train.target_update_interval``). It does
what the embedded trainer does at the same env-step counts: the replay ratio (updates per agent step, the
actors wait for the learner when it falls behind), evaluation, checkpoints in the same layout, resume.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ezrobot.adapt.source import initialise
from ezrobot.checkpoint import save_checkpoint
from ezrobot.config import importance_beta
from ezrobot.distributed.launch import Roles, connect, import_ray, start_owner, start_workers
from ezrobot.distributed.owner import COUNTERS
from ezrobot.distributed.workers import RemoteReplay, batch_to
from ezrobot.evaluate import release_freed_memory
from ezrobot.factory import Parts, replay_kwargs
from ezrobot.interrupt import StopRequest, catch_stop_signals
from ezrobot.learner import Learner
from ezrobot.logger import MetricsLogger
from ezrobot.reanalyze import Reanalyzer
from ezrobot.replay.buffer import Replay
from ezrobot.trainer import Trainer
from ezrobot.types import TrainBatch


class OwnerView:
    """What the embedded trainer reads of its replay (size, bytes), from the owner's last status."""

    def __init__(self):
        self.status: Dict[str, Any] = {"replay_transitions": 0, "replay_nbytes": 0, "replay_sampleable": 0}

    def __len__(self) -> int:
        return int(self.status["replay_transitions"])

    @property
    def nbytes(self) -> int:
        return int(self.status["replay_nbytes"])

    @property
    def num_sampleable(self) -> int:
        return int(self.status["replay_sampleable"])


@dataclass
class LearnerParts:
    """The learner process's parts: the replay view, the learner, and a local reanalyzer when the run has no
    reanalyze workers."""

    replay: OwnerView
    learner: Learner
    reanalyzer: Optional[Reanalyzer]


class DistributedTrainer(Trainer):
    """The learner and coordinator of a distributed run (same counters, metrics and checkpoints as
    :class:`ezrobot.trainer.Trainer`).

    Args:
        parts: The learner's model copies, search agent and evaluator.
        learner: Gradient steps on the online network.
        replay_cfg: The sized replay settings (the owner builds the replay).
        logger: The run directory's metrics log.
    """

    def __init__(self, parts: Parts, learner: Learner, replay_cfg, logger: MetricsLogger):
        super().__init__(parts, LearnerParts(OwnerView(), learner, None), logger)
        self.replay_cfg = replay_cfg
        self.ray = import_ray()
        self.roles: Optional[Roles] = None
        self.pending: List[Tuple[Any, int]] = []

    # ------------------------------------------------------------------------------------- owner
    def _sync(self) -> Dict[str, Any]:
        """Read the owner's status into the counters (the learner's own ``updates`` stays)."""
        status = self.ray.get(self.roles.owner.status.remote())
        for key in COUNTERS:
            setattr(self.c, key, status[key])
        self.t.replay.status = status
        return status

    def _publish(self, kind: str) -> None:
        """Put the online weights in the object store as the newest ``kind`` weights."""
        weights = {k: v.detach().cpu() for k, v in self.p.model.state_dict().items()}
        self.roles.owner.set_weights.remote(kind, self.c.updates, [self.ray.put(weights)])

    # ---------------------------------------------------------------------------------- learning
    def sample_batch(self) -> Tuple[np.ndarray, TrainBatch, Dict[str, float]]:
        """The next batch: from the reanalyze workers (each keeps ``distributed.batches_in_flight`` in
        progress), or built here when there are none."""
        if self.t.reanalyzer is not None:
            beta = importance_beta(self.cfg, self.p.derived, self.c.updates)
            positions, weights = (np.array(a) for a in self.ray.get(
                self.roles.owner.sample.remote(self.cfg.train.batch_size, beta)))
            batch, metrics = self.t.reanalyzer.make_batch(positions, weights, self.c.updates, self.rng)
            return positions, batch, metrics
        workers = self.roles.reanalyzers
        for i, worker in enumerate(workers):
            while sum(w == i for _, w in self.pending) < self.cfg.distributed.batches_in_flight:
                self.pending.append((worker.make_batch.remote(self.c.updates), i))
        ready, _ = self.ray.wait([ref for ref, _ in self.pending], num_returns=1)
        self.pending = [(ref, w) for ref, w in self.pending if ref != ready[0]]
        positions, batch, metrics = self.ray.get(ready[0])
        return positions, batch_to(batch, self.p.device), metrics

    def learn(self, positions: np.ndarray, batch: TrainBatch, re_metrics: Dict[str, float]) -> None:
        """The gradient step, new priorities to the owner, and the target / self-play weight refreshes."""
        t = self.cfg.train
        metrics, priorities = self.t.learner.update(batch, self.c.updates)
        self.c.updates += 1
        self.roles.owner.update_priorities.remote(positions, priorities, self.c.updates)
        if self.c.updates % t.target_update_interval == 0:
            self.p.target_model.load_state_dict(self.p.model.state_dict())
            if self.t.reanalyzer is not None:
                self.t.reanalyzer.target_changed()
            self._publish("target")
        if self.c.updates % t.selfplay_update_interval == 0:
            self.p.selfplay_model.load_state_dict(self.p.model.state_dict())
            self._publish("selfplay")
        metrics.update(re_metrics)
        self.last_metrics = metrics

    def evaluate(self) -> Dict[str, Any]:
        """The embedded evaluation row plus the distributed counters: the replay ratio achieved, actor
        restarts, refused calls of dead actors, transitions written."""
        status = self.t.replay.status
        learned = max(1, self.c.agent_steps - self.start_transitions)
        self.last_metrics.update({
            "distributed/replay_ratio": round(self.c.updates / learned, 4) if self.c.updates else 0.0,
            "distributed/actor_restarts": status.get("actor_restarts", 0),
            "distributed/ignored_calls": status.get("ignored_calls", 0),
            "distributed/nodes": status.get("nodes", 0),
            "distributed/replay_insertions": status.get("replay_insertions", 0)})
        return super().evaluate()

    # ------------------------------------------------------------------------------- checkpoints
    def _state(self) -> Dict[str, Any]:
        return {"model": self.p.model.state_dict(), "target_model": self.p.target_model.state_dict(),
                "selfplay_model": self.p.selfplay_model.state_dict(),
                "optimizer": self.t.learner.optimizer.state_dict(), "learner": self.t.learner.state_dict(),
                "counters": self.c.__dict__.copy(),
                "last_metrics": dict(self.last_metrics), "last_eval": self.last_eval,
                "distributed": {"num_actors": self.cfg.distributed.num_actors},
                "rng": {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state(),
                        "python": random.getstate(), "numpy_global": np.random.get_state()}}

    def save(self) -> str:
        """An atomic checkpoint: the learner's state with the owner's counters and replay taken together."""
        self.check_finite_weights()
        counters, replay_state = self.ray.get(self.roles.owner.snapshot.remote())
        for key in COUNTERS:
            setattr(self.c, key, counters[key])
        self.c.wall_time_s = self.elapsed()
        path = save_checkpoint(self.cfg.run_dir, self.c.env_steps, self._state(),
                               replay_state if self.cfg.log.save_replay else None, keep=self.cfg.log.keep_checkpoints)
        del replay_state
        release_freed_memory()
        return path

    def try_resume(self) -> bool:
        """Load the newest intact checkpoint into the learner and the owner (before any actor starts)."""
        loaded = self.load_newest()
        if loaded is None:
            return False
        state, replay_state = loaded
        self.ray.get(self.roles.owner.restore.remote(state["counters"], replay_state, self.c.updates))
        self.logger.truncate_after(self.c.env_steps)
        return True

    def init_from_source(self) -> None:
        """A fine-tune run: the source's parts into the online network (and its replay, relabelled, into the
        owner's through a local copy), then the target and self-play copies."""
        cfg = self.cfg
        replay = (Replay(self.replay_cfg, self.p.spec, **replay_kwargs(
            cfg, self.p.spec, cfg.train.num_envs * cfg.distributed.num_actors)) if cfg.adapt.reuse_replay else None)
        initialise(cfg, self.p.spec, self.p.model, replay, self.p.device)
        for copy in (self.p.target_model, self.p.selfplay_model):
            copy.load_state_dict(self.p.model.state_dict())
        if replay is not None:
            self.ray.get(self.roles.owner.restore.remote({}, replay.state_dict(copy=False), 0))

    # ----------------------------------------------------------------------------------------- run
    def _start(self) -> bool:
        """Join or start Ray, create the owner, resume or initialise, publish the weights, start the workers.
        Returns whether a checkpoint was resumed."""
        self.started_ray = connect(self.cfg)
        self.roles = start_owner(self.cfg, self.p.spec, self.p.derived, self.replay_cfg)
        resumed = self.try_resume()
        self.start_clock()
        if not resumed and self.cfg.init_from:
            self.init_from_source()
        if self.cfg.distributed.num_reanalyzers == 0:
            self.t.reanalyzer = Reanalyzer(self.cfg, self.p.spec, self.p.derived, RemoteReplay(self.roles.owner),
                                           self.p.target_model, self.p.agent, self.p.device)
        self._publish("target")
        self._publish("selfplay")
        start_workers(self.roles, self.cfg, self.p.derived)
        self._sync()
        if not resumed and self.cfg.init_from and not any(r.get("env_steps") == 0 for r in self.logger.rows):
            self.evaluate()  # the loaded agent before its first step: the fine-tune curve starts at 0
        return resumed

    def _collecting(self, stop: StopRequest) -> None:
        """Learn as the actors collect: an update whenever the replay ratio allows one, evaluation and
        checkpoints at the embedded trainer's env-step counts."""
        while True:
            status = self._sync()
            if status["done"]:
                break
            if status["updates_allowed"] > self.c.updates:
                self.learn(*self.sample_batch())
            else:
                time.sleep(0.005)  # no update due: wait for the actors' next steps
            self.after_step()
            self.stop_if_requested(stop)
        self.ray.get(self.roles.actor_runs)  # every actor has seen the budget spent: the counters are final
        self._sync()
        self.after_step()

    def run(self, stop: Optional[StopRequest] = None) -> Dict[str, Any]:
        """Train until the env-step budget and the extra updates are spent; return the summary (as
        :meth:`ezrobot.trainer.Trainer.run`)."""
        stop = stop if stop is not None else StopRequest()
        try:
            resumed = self._start()
            self.open_bar(resumed)
            with catch_stop_signals(stop):
                self._collecting(stop)
                while self.c.updates < self.p.derived.total_updates and self.t.replay.num_sampleable > 0:
                    self.learn(*self.sample_batch())
                    self.stop_if_requested(stop)
                if not self.logger.rows or self.logger.rows[-1]["env_steps"] != self.c.env_steps:
                    self.evaluate()
                path = self.save()
            if stop.requested:
                self.interrupted(stop, path)
            return self.summary()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        if self.roles is not None:
            self.roles.shutdown()
        if getattr(self, "started_ray", False):
            self.ray.shutdown()
