"""Deterministic evaluation: N episodes run in parallel, one batched search per step (no noise)."""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np

from ezrobot.selfplay import EpisodeTracker
from ezrobot.types import EpisodeStats


def run_episodes(envs: Sequence, act_fn: Callable, seed: int, action_repeat: int,
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
