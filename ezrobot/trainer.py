"""The embedded single-process training loop. It receives its parts (built by ``ezrobot.factory``) and
knows only their interfaces: self-play, replay, reanalyze, learner, evaluation, logger, checkpoints."""
from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from ezrobot.adapt.source import initialise
from ezrobot.checkpoint import (CheckpointError, damaged_message, find_checkpoint, load_checkpoint,
                                load_model_weights, save_checkpoint)
from ezrobot.config import importance_beta, start_transitions, visit_temperature
from ezrobot.evaluate import release_freed_memory
from ezrobot.factory import Parts, TrainingParts
from ezrobot.interrupt import StopRequest, TrainingInterrupted, catch_stop_signals
from ezrobot.learner import NumericError
from ezrobot.logger import MetricsLogger
from ezrobot.progress import Progress
from ezrobot.types import TrainBatch


@dataclass
class Counters:
    """Progress counters saved in every checkpoint."""

    env_steps: int = 0
    agent_steps: int = 0
    updates: int = 0
    episodes: int = 0
    wall_time_s: float = 0.0
    next_eval: int = 0
    next_checkpoint: int = 0
    train_returns: list = field(default_factory=list)
    train_terms: list = field(default_factory=list)


class Trainer:
    """Runs collection, updates, evaluation and checkpointing for one run directory.

    Args:
        parts: The run's shared parts (config, model copies, search agent, evaluator).
        training: Replay, learner, reanalyzer, self-play and the warm-up policy.
        logger: The run directory's metrics log.
    """

    def __init__(self, parts: Parts, training: TrainingParts, logger: MetricsLogger):
        cfg = parts.cfg
        self.cfg = cfg
        self.p, self.t, self.logger = parts, training, logger
        self.c = Counters(next_eval=cfg.eval.interval, next_checkpoint=cfg.log.checkpoint_interval)
        self.rng = np.random.default_rng(cfg.seed)
        self.last_metrics: Dict[str, float] = {}
        self.last_eval: Optional[float] = None
        self._bar = None
        self._wall0, self._wall0_offset = time.perf_counter(), 0.0
        self.start_transitions = start_transitions(cfg)

    # ----------------------------------------------------------------------------------- checkpoints
    def _state(self) -> Dict[str, Any]:
        """Everything besides the replay that a resume needs to continue exactly as this run would."""
        return {
            "model": self.p.model.state_dict(),
            "target_model": self.p.target_model.state_dict(),
            "selfplay_model": self.p.selfplay_model.state_dict(),
            "optimizer": self.t.learner.optimizer.state_dict(), "learner": self.t.learner.state_dict(),
            "counters": self.c.__dict__.copy(),
            "last_metrics": dict(self.last_metrics), "last_eval": self.last_eval,
            "reanalyzer": self.t.reanalyzer.state_dict(),
            "selfplay": self.t.selfplay.state_dict() if self.cfg.log.save_replay else None,
            "rng": {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state(),
                    "python": random.getstate(), "numpy_global": np.random.get_state(),
                    "selfplay": self.p.selfplay_rng.bit_generator.state,
                    "random_actor": self.t.random_actor.rng.bit_generator.state,
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        }

    def restore_rngs(self, rng: Dict[str, Any]) -> None:
        """Put every generator back (checkpoints of earlier versions lack some: those keep their seeds)."""
        self.rng.bit_generator.state = rng["numpy"]
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if "numpy_global" in rng:
            np.random.set_state(rng["numpy_global"])
        if "selfplay" in rng:
            self.p.selfplay_rng.bit_generator.state = rng["selfplay"]
            self.t.random_actor.rng.bit_generator.state = rng["random_actor"]
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def check_finite_weights(self) -> None:
        """Raise :class:`NumericError` naming the first online weight that holds NaN or inf."""
        bad = next((name for name, w in self.p.model.state_dict().items()
                    if w.is_floating_point() and not bool(torch.isfinite(w).all())), None)
        if bad is not None:
            raise NumericError(f"non-finite weights in {bad} at {self.c.env_steps} env steps; no checkpoint "
                               "written (the last one is intact); lower optim.lr")

    def save(self) -> str:
        """Write an atomic checkpoint of everything needed to resume.

        Raises:
            NumericError: the online weights hold NaN or inf (nothing is written: the last checkpoint stays).
        """
        self.check_finite_weights()
        replay_state = self.t.replay.state_dict(copy=False) if self.cfg.log.save_replay else None
        self.c.wall_time_s = self.elapsed()
        path = save_checkpoint(self.cfg.run_dir, self.c.env_steps, self._state(), replay_state,
                               keep=self.cfg.log.keep_checkpoints)
        del replay_state
        release_freed_memory()  # the pickled environments and torch's buffers: ~50-150 MB kept otherwise
        return path

    def load_newest(self) -> Optional[Tuple[Dict[str, Any], Optional[Dict[str, Any]]]]:
        """Load the newest intact checkpoint's networks, optimizer, counters, metrics and generators (damaged
        newer ones are reported in one line on stderr). Returns its ``(state, replay_state)``, or None when
        the run directory has no checkpoint.

        Raises:
            CheckpointError: every checkpoint of the run directory is damaged.
        """
        path, damaged = find_checkpoint(self.cfg.run_dir)
        if damaged and path is not None:
            print(damaged_message(damaged, path), file=sys.stderr)
        elif damaged:
            raise CheckpointError(f"run_dir {self.cfg.run_dir!r} has no intact checkpoint ({damaged[0]}); "
                                  "move its checkpoints/ away to start the run again")
        if path is None:
            return None
        state, replay_state = load_checkpoint(path, map_location=self.p.device)
        for name in ("model", "target_model", "selfplay_model"):
            load_model_weights(getattr(self.p, name), state[name], path)
        self.t.learner.optimizer.load_state_dict(state["optimizer"])
        self.t.learner.load_state_dict(state.get("learner", {}))
        self.c = Counters(**state["counters"])
        self.last_metrics, self.last_eval = dict(state.get("last_metrics", {})), state.get("last_eval")
        self.restore_rngs(state["rng"])
        return state, replay_state

    def try_resume(self) -> bool:
        """Continue from the newest intact checkpoint of the run directory, if any (:meth:`load_newest`, then
        the reanalyzer, the replay and the self-play environments). Returns True when resumed."""
        loaded = self.load_newest()
        if loaded is None:
            return False
        state, replay_state = loaded
        if "reanalyzer" in state:
            self.t.reanalyzer.load_state_dict(state["reanalyzer"])
        else:
            self.t.reanalyzer.target_changed()
        if replay_state is not None:
            self.t.replay.load_state_dict(replay_state)
        if replay_state is not None and state.get("selfplay") is not None:
            self.t.selfplay.load_state_dict(state["selfplay"])  # the same environments, mid-episode
        else:
            self.t.selfplay.restart_after_resume()
        self.logger.truncate_after(self.c.env_steps)
        return True

    def init_from_source(self) -> None:
        """A new run with ``init_from``: load the source's parts (and replay) into the online network, then
        its target and self-play copies (``ezrobot.adapt.source.initialise``)."""
        initialise(self.cfg, self.p.spec, self.p.model, self.t.replay, self.p.device)
        for copy in (self.p.target_model, self.p.selfplay_model):
            copy.load_state_dict(self.p.model.state_dict())
        self.t.reanalyzer.target_changed()
        if self.cfg.adapt.reuse_replay:
            self.t.selfplay.restart_after_resume()  # the copy closed environment 0's first episode

    # ----------------------------------------------------------------------------------- loop parts
    def start_clock(self) -> None:
        """Wall time counts on from the counters' ``wall_time_s`` (0, or the resumed run's)."""
        self._wall0, self._wall0_offset = time.perf_counter(), self.c.wall_time_s

    def elapsed(self) -> float:
        return self._wall0_offset + (time.perf_counter() - self._wall0)

    def update(self) -> None:
        """One learner update: :meth:`sample_batch` then :meth:`learn`."""
        self.learn(*self.sample_batch())

    def sample_batch(self) -> Tuple[np.ndarray, TrainBatch, Dict[str, float]]:
        """Draw positions from the replay (β annealed over the run) and build their batch with fresh targets.

        Returns:
            ``(positions, batch, reanalyze metrics)``.
        """
        beta = importance_beta(self.cfg, self.p.derived, self.c.updates)
        positions, weights = self.t.replay.sample(self.cfg.train.batch_size, beta, self.rng)
        batch, re_metrics = self.t.reanalyzer.make_batch(positions, weights, self.c.updates, self.rng)
        return positions, batch, re_metrics

    def learn(self, positions: np.ndarray, batch: TrainBatch, re_metrics: Dict[str, float]) -> None:
        """The gradient step on ``batch``, new priorities, and the target / self-play weight refreshes."""
        t = self.cfg
        metrics, priorities = self.t.learner.update(batch, self.c.updates)
        self.t.replay.update_priorities(positions, priorities)
        self.c.updates += 1
        if self.c.updates % t.train.target_update_interval == 0:
            self.p.target_model.load_state_dict(self.p.model.state_dict())
            self.t.reanalyzer.target_changed()
        if self.c.updates % t.train.selfplay_update_interval == 0:
            self.p.selfplay_model.load_state_dict(self.p.model.state_dict())
        metrics.update(re_metrics)
        self.last_metrics = metrics

    def collect(self) -> None:
        """One agent step in every training environment (random actions until ``train.start_transitions``)."""
        learning = self.c.agent_steps >= self.start_transitions
        if learning:
            act = self.p.agent.actor(self.p.selfplay_model, self.p.selfplay_rng, train=True,
                                     temperature=visit_temperature(self.cfg, self.p.derived, self.c.updates))
        else:
            act = self.t.random_actor
        env_steps, finished = self.t.selfplay.step(act)
        self.c.env_steps += env_steps
        self.c.agent_steps += len(self.t.selfplay.envs)
        self.c.episodes += len(finished)
        self.c.train_returns = (self.c.train_returns + [e.ret for e in finished])[-20:]
        self.c.train_terms = (self.c.train_terms + [e.terms for e in finished if e.terms])[-20:]

    def _train_term_means(self) -> Dict[str, float]:
        """``train/reward/<term>``: mean per-episode sum of each reward term over recent training episodes."""
        keys = sorted({k for terms in self.c.train_terms for k in terms})
        return {f"train/{k}": float(np.mean([t.get(k, 0.0) for t in self.c.train_terms])) for k in keys}

    def _updates_due(self) -> int:
        learned = self.c.agent_steps - self.start_transitions
        if learned < 0 or self.t.replay.num_sampleable == 0:
            return 0
        return int(math.floor(learned * self.cfg.train.replay_ratio)) - self.c.updates

    def evaluate(self) -> Dict[str, Any]:
        """Run the configured evaluation and log one metrics row."""
        stats = self.p.evaluator(self.p.model, self.c.env_steps)
        row = {"env_steps": self.c.env_steps, "agent_steps": self.c.agent_steps,
               "train_steps": self.c.updates, "wall_time_s": round(self.elapsed(), 2), **stats,
               "train_return_mean": float(np.mean(self.c.train_returns)) if self.c.train_returns else None,
               **self._train_term_means(), "replay_transitions": len(self.t.replay),
               "replay_mb": round(self.t.replay.nbytes / 2**20, 2),
               **self.last_metrics}
        self.logger.log(row)
        self.last_eval = stats.get("eval_return_mean")
        return row

    # ----------------------------------------------------------------------------------------- run
    def run(self, stop: Optional[StopRequest] = None) -> Dict[str, Any]:
        """Train until the env-step budget and the extra updates are spent; return the summary.

        Args:
            stop: Polled after every agent step and every extra update; SIGINT / SIGTERM set it while the
                loop runs. When set, a checkpoint is written there and :class:`TrainingInterrupted` raised.
        """
        stop = stop if stop is not None else StopRequest()
        resumed = self.try_resume()
        self.start_clock()
        if not resumed and self.cfg.init_from:
            self.init_from_source()
            if not any(row.get("env_steps") == 0 for row in self.logger.rows):
                self.evaluate()  # the loaded agent before its first step: the fine-tune curve starts at 0
        budget = self.p.derived.agent_steps
        self.open_bar(resumed)
        with catch_stop_signals(stop):
            while self.c.agent_steps < budget:
                self.collect()
                for _ in range(self._updates_due()):
                    self.update()
                self.after_step()
                self.stop_if_requested(stop)
            done_updates = self.p.derived.total_updates
            while self.c.updates < done_updates and self.t.replay.num_sampleable > 0:
                self.update()
                self.stop_if_requested(stop)
            if not self.logger.rows or self.logger.rows[-1]["env_steps"] != self.c.env_steps:
                self.evaluate()
            path = self.save()
        if stop.requested:  # a signal during the final evaluation or save: that checkpoint is the stop's
            self.interrupted(stop, path)
        return self.summary()

    def stop_if_requested(self, stop: StopRequest) -> None:
        """At a safe point: when a stop was requested, write a checkpoint and raise TrainingInterrupted."""
        if stop.requested:
            self.interrupted(stop, self.save())

    def interrupted(self, stop: StopRequest, path: str) -> None:
        """Close the progress bar and the logger, then raise :class:`TrainingInterrupted` for checkpoint ``path``."""
        if self._bar is not None:
            self._bar.close()
        self.logger.close()
        raise TrainingInterrupted(stop.signum, path, self.c.env_steps)

    def after_step(self) -> None:
        if self.c.env_steps >= self.c.next_eval:
            self.c.next_eval += self.cfg.eval.interval * max(1, math.ceil(
                (self.c.env_steps - self.c.next_eval + 1) / self.cfg.eval.interval))
            self.evaluate()
            self.save()
            self.c.next_checkpoint = self.c.env_steps + self.cfg.log.checkpoint_interval
            self._tick(force=True)
        elif self.c.env_steps >= self.c.next_checkpoint:
            self.c.next_checkpoint = self.c.env_steps + self.cfg.log.checkpoint_interval
            self.save()
        self._tick()

    def open_bar(self, resumed: bool) -> None:
        if self.cfg.log.progress:
            total = self.p.derived.agent_steps * self.p.spec.action_repeat
            self._bar = Progress(total, self.c.env_steps, resumed)

    def _tick(self, force: bool = False) -> None:
        if self._bar is not None:
            self._bar.tick(self.c.env_steps, self.c.updates, self.last_eval, force=force)

    def summary(self) -> Dict[str, Any]:
        if self._bar is not None:
            self._bar.close()
        rows = self.logger.rows
        best = self.logger.best()
        wall = self.elapsed()
        summary = {
            "task": self.cfg.task, "experiment": self.cfg.experiment, "seed": self.cfg.seed,
            "env_steps": self.c.env_steps, "agent_steps": self.c.agent_steps, "train_steps": self.c.updates,
            "wall_time_s": round(wall, 2), "env_steps_per_s": round(self.c.env_steps / wall, 2),
            "updates_per_s": round(self.c.updates / wall, 2),
            "final_eval_return_mean": rows[-1].get("eval_return_mean") if rows else None,
            "best_eval_return_mean": best.get("eval_return_mean") if best else None,
            "best_eval_env_steps": best.get("env_steps") if best else None,
        }
        tmp = os.path.join(self.cfg.run_dir, "summary.json.tmp")
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, os.path.join(self.cfg.run_dir, "summary.json"))
        self.logger.close()
        return summary
