"""``ezrobot video`` and evaluation videos: connect trained runs (or a random policy) to ``ezrobot.video``."""
from __future__ import annotations

import os
import re
from typing import Dict, List, Tuple

import numpy as np

from ezrobot.cli import UsageError, parse_kv

_ALLOWED = {
    "run_dir": "trained run to render", "task": "task to render without training", "policy": "random|trained",
    "episodes": "episodes", "format": "mp4|gif", "camera": "camera(s), comma-separated", "out": "output file",
    "overlays": "true|false", "fps": "frames per second", "size": "HxW per camera", "checkpoint": "checkpoint dir",
    "seed": "seed", "device": "device", "max_steps": "agent steps per episode at most",
}


def search_policy(agent, model, rng: np.random.Generator, continuous: bool):
    """``obs -> (action, extras)`` with the deterministic search, extras for the overlays."""

    def policy(obs: np.ndarray):
        out = agent.search(model, obs[None], rng, train=False)
        extras = {"value": float(out.root_value[0]), "visit_probs": out.policy[0]}
        if continuous:
            extras["sampled_actions"] = out.sampled_actions[0]
            return out.action[0], extras
        return int(out.action[0]), extras

    return policy


def _size(text: str) -> Tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or min(int(match.group(1)), int(match.group(2))) < 16:
        raise UsageError(f"size={text!r} must be HxW with both sides >= 16, e.g. 240x320")
    return int(match.group(1)), int(match.group(2))


def _bool(text: str, name: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise UsageError(f"{name}={text!r} must be true or false")


def _int(text: str, name: str, low: int = 1) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} must be an integer >= {low}") from None
    if value < low:
        raise UsageError(f"{name}={text!r} must be an integer >= {low}")
    return value


def _policy_and_env(kv: Dict[str, str], seed: int):
    """(env, policy_fn, default output path) for a trained run or a random policy on a task."""
    from ezrobot.envs import EnvConfig, make_env
    from ezrobot.video import random_policy

    policy = kv.get("policy", "trained" if "run_dir" in kv else "random")
    if policy not in ("random", "trained"):
        raise UsageError(f"policy={policy!r} is not allowed; choose random or trained")
    if "run_dir" in kv:
        from ezrobot.app import _load_run

        cfg, parts, ckpt, state = _load_run(kv["run_dir"], kv.get("checkpoint"), kv.get("device", "auto"))
        env, spec = make_env(cfg.task, cfg.env, seed=seed, train=False)
        if policy == "random":
            fn = random_policy(spec, np.random.default_rng(seed))
        else:
            fn = search_policy(parts.agent, parts.model, np.random.default_rng(seed),
                               spec.action_type == "continuous")
        name = f"{policy}_{state['counters']['env_steps']}"
        return env, fn, os.path.join(kv["run_dir"], "videos", name)
    if "task" not in kv:
        raise UsageError("video needs run_dir=R (a trained run) or task=NAME policy=random")
    if policy != "random":
        raise UsageError("task=NAME renders policy=random; for a trained policy pass run_dir=R")
    env, spec = make_env(kv["task"], EnvConfig(), seed=seed, train=False)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", kv["task"].replace(".py", "")).strip("_")
    return env, random_policy(spec, np.random.default_rng(seed)), os.path.join("videos", f"{safe}_random")


def render_command(args: List[str]) -> int:
    """Parse ``key=value`` arguments, record the episodes and write one video file."""
    from ezrobot.video import parse_cameras, record_episode, write_video

    kv = parse_kv(args, _ALLOWED)
    fmt = kv.get("format", "mp4")
    if fmt not in ("mp4", "gif"):
        raise UsageError(f"format={fmt!r} is not allowed; choose mp4 or gif")
    episodes = _int(kv.get("episodes", "1"), "episodes")
    seed = _int(kv.get("seed", "0"), "seed", low=0)
    size = _size(kv.get("size", "240x320"))
    overlays = _bool(kv.get("overlays", "true"), "overlays")
    fps = float(kv.get("fps", "30"))
    max_steps = _int(kv["max_steps"], "max_steps") if "max_steps" in kv else None
    cameras = parse_cameras(kv.get("camera", ""))
    env, policy, default_out = _policy_and_env(kv, seed)
    frames: List[np.ndarray] = []
    returns = []
    try:
        for i in range(episodes):
            rec = record_episode(env, policy, cameras, size=size, overlays=overlays, seed=seed + i,
                                 max_steps=max_steps)
            frames.extend(rec.frames)
            returns.append(rec.episode_return)
    finally:
        env.close()
    out = kv.get("out", f"{default_out}.{fmt}")
    path = write_video(frames, out, fps=fps, format=fmt)
    print(f"wrote {path} ({len(frames)} frames, returns {[round(r, 2) for r in returns]})")
    return 0


def record_eval_video(parts, model, env_steps: int, seed: int) -> str:
    """Render the first evaluation episode (same seed, deterministic search) to ``videos/eval_<N>.mp4``."""
    from ezrobot.envs import make_env
    from ezrobot.video import parse_cameras, record_episode, write_video

    cfg = parts.cfg
    env, spec = make_env(cfg.task, cfg.env, seed=seed, train=False)
    was_training = model.training
    model.eval()
    try:
        policy = search_policy(parts.agent, model, np.random.default_rng(seed), spec.action_type == "continuous")
        rec = record_episode(env, policy, parse_cameras(cfg.eval.video_camera), seed=seed)
    finally:
        env.close()
        model.train(was_training)
    path = os.path.join(cfg.run_dir, "videos", f"eval_{env_steps:09d}.mp4")
    write_video(rec.frames, path, fps=30, format="mp4")
    return path
