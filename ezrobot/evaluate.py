"""Deterministic evaluation: N episodes run in parallel, one batched search per step (no noise)."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ezrobot.agent import SearchAgent
from ezrobot.config import Config
from ezrobot.envs import make_env
from ezrobot.envs.spec import Env, EnvSpec, check_observation
from ezrobot.selfplay import EpisodeTracker
from ezrobot.types import ActOutput, EpisodeStats

VideoRecorder = Callable[[SearchAgent, torch.nn.Module, int, int], str]
"""``(agent, model, env_steps, seed) -> path``: renders one evaluation episode (see
``ezrobot.rollout_video.EvalVideoRecorder``)."""


def run_episodes(envs: Sequence[Env], act_fn: Callable[[np.ndarray], ActOutput], seed: int, action_repeat: int,
                 on_step: Callable | None = None) -> List[EpisodeStats]:
    """Play one episode in each env (env i reset with ``seed + i``) until all have ended.

    Args:
        envs: Evaluation environments (no reward clipping or episodic life).
        act_fn: ``obs [E, *O] -> ActOutput`` with deterministic actions.
        seed: Base seed of the episodes.
        action_repeat: Used when an env does not report ``info["env_steps"]``.
        on_step: Optional ``(env_index, obs, reward, info, act_out_row) -> None`` hook (videos).

    Returns:
        One :class:`EpisodeStats` per env, in env order.
    """
    tracker = EpisodeTracker(len(envs))
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    active = list(range(len(envs)))
    results: Dict[int, EpisodeStats] = {}
    while active:
        out = act_fn(np.stack([obs[i] for i in active]))
        still = []
        for row, i in enumerate(active):
            obs[i], reward, term, trunc, info = envs[i].step(out.actions[row])
            check_observation(obs[i], envs[i].spec)
            tracker.record(i, reward, info, action_repeat)
            if on_step is not None:
                on_step(i, obs[i], reward, info, out, row)
            if term or trunc:
                results[i] = tracker.finish(i, info)
            else:
                still.append(i)
        active = still
    return [results[i] for i in range(len(envs))]


def summarize(episodes: List[EpisodeStats], prefix: str = "eval") -> Dict[str, float]:
    """Mean/std of returns, mean episode length, mean of each reward term and the success rate."""
    returns = np.array([e.ret for e in episodes], dtype=np.float64)
    out = {
        f"{prefix}_return_mean": float(returns.mean()),
        f"{prefix}_return_std": float(returns.std()),
        f"{prefix}_episodes": len(episodes),
        f"{prefix}_length_mean": float(np.mean([e.length for e in episodes])),
    }
    keys = sorted({k for e in episodes for k in e.terms})
    for key in keys:
        out[key] = float(np.mean([e.terms.get(key, 0.0) for e in episodes]))
    if episodes and episodes[0].success is not None:
        out[f"{prefix}_success_rate"] = float(np.mean([bool(e.success) for e in episodes]))
    return out


def release_freed_memory() -> None:
    """Collect garbage and hand the C heap's free pages back to the system (glibc ``malloc_trim``; a no-op
    elsewhere). Building and closing evaluation environments (MuJoCo models, dm_control physics) and writing a
    checkpoint (the pickled self-play environments, the serialised state) leave freed but fragmented heap that
    glibc keeps: without this the RSS of a run climbed by ~100 MB per evaluation for the first evaluations,
    and by ~145 MB at the first checkpoint (``ezrobot bench memory``, docs/RESULTS.md#memory)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _malloc_trim():
    """glibc's ``malloc_trim``, or None (another C library, or none found)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


class Evaluator:
    """Deterministic evaluation of a run's model on fresh evaluation environments.

    Args:
        cfg: The run configuration (task, env settings, ``eval`` group, seed).
        spec: The environments' ``EnvSpec``.
        agent: The search agent.
        video_recorder: Called after each periodic evaluation to render its first episode, or None.
    """

    def __init__(self, cfg: Config, spec: EnvSpec, agent: SearchAgent,
                 video_recorder: Optional[VideoRecorder] = None):
        self.cfg, self.spec, self.agent, self.video_recorder = cfg, spec, agent, video_recorder

    def episodes(self, model: torch.nn.Module, episodes: int, seed: int,
                 on_step: Optional[Callable] = None) -> Dict[str, float]:
        """Evaluate ``model`` over ``episodes`` parallel episodes (env i reset with ``seed + i``)."""
        was_training = model.training
        model.eval()
        envs = [make_env(self.cfg.task, self.cfg.env, seed=seed + i, train=False)[0] for i in range(episodes)]
        try:
            act = self.agent.actor(model, np.random.default_rng(seed), train=False,
                                   num_simulations=self.cfg.eval.num_simulations or None)
            stats = run_episodes(envs, act, seed, self.spec.action_repeat, on_step=on_step)
        finally:
            for env in envs:
                env.close()
            model.train(was_training)
        return summarize(stats)

    def __call__(self, model: torch.nn.Module, env_steps: int) -> Dict[str, float]:
        """The trainer's periodic evaluation (fixed seeds; a video of the first episode with a recorder)."""
        seed = 10_000 + self.cfg.seed
        stats = self.episodes(model, self.cfg.eval.episodes, seed)
        if self.video_recorder is not None:
            self.video_recorder(self.agent, model, env_steps, seed)
        release_freed_memory()
        return stats
