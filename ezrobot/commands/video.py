"""``ezrobot video run_dir=R | task=NAME policy=random [...]``: render rollouts of a trained run or of a random
policy on a task to one video file."""
from __future__ import annotations

import os
import re
from typing import Dict, List, Tuple

import numpy as np

from ezrobot.envs import EnvConfig, make_env
from ezrobot.envs.spec import Env
from ezrobot.rollout_video import PolicyFn, SearchPolicy, parse_cameras, random_policy, record_rollouts
from ezrobot.runs import load_run
from ezrobot.usage import UsageError, parse_bool, parse_int, parse_kv, parse_size, unwritable_reason
from ezrobot.video_writer import write_video

ALLOWED = {
    "run_dir": "trained run to render", "task": "task to render without training", "policy": "random|trained",
    "episodes": "episodes", "format": "mp4|gif", "camera": "camera(s), comma-separated", "out": "output file",
    "overlays": "true|false", "fps": "frames per second", "size": "HxW per camera", "checkpoint": "checkpoint dir",
    "seed": "seed", "device": "device", "max_steps": "agent steps per episode at most",
}


def policy_and_env(kv: Dict[str, str], seed: int) -> Tuple[Env, PolicyFn, str]:
    """(env, policy, default output path without suffix) for a trained run or a random policy on a task."""
    policy = kv.get("policy", "trained" if "run_dir" in kv else "random")
    if policy not in ("random", "trained"):
        raise UsageError(f"policy={policy!r} is not allowed; choose random or trained")
    if "run_dir" in kv:
        run = load_run(kv["run_dir"], kv.get("checkpoint"), kv.get("device", "auto"))
        env, spec = make_env(run.cfg.task, run.cfg.env, seed=seed, train=False)
        if policy == "random":
            fn = random_policy(spec, np.random.default_rng(seed))
        else:
            fn = SearchPolicy(run.parts.agent, run.parts.model, np.random.default_rng(seed),
                              spec.action_type == "continuous")
        return env, fn, os.path.join(kv["run_dir"], "videos", f"{policy}_{run.env_steps}")
    if "task" not in kv:
        raise UsageError("video needs run_dir=R (a trained run) or task=NAME policy=random")
    if policy != "random":
        raise UsageError("task=NAME renders policy=random; for a trained policy pass run_dir=R")
    env, spec = make_env(kv["task"], EnvConfig(), seed=seed, train=False)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", kv["task"].replace(".py", "")).strip("_")
    return env, random_policy(spec, np.random.default_rng(seed)), os.path.join("videos", f"{safe}_random")


def main(args: List[str]) -> int:
    """Parse ``key=value`` arguments, record the episodes and write one video file."""
    kv = parse_kv(args, ALLOWED)
    fmt = kv.get("format", "mp4")
    if fmt not in ("mp4", "gif"):
        raise UsageError(f"format={fmt!r} is not allowed; choose mp4 or gif")
    episodes = parse_int(kv.get("episodes", "1"), "episodes")
    seed = parse_int(kv.get("seed", "0"), "seed", low=0)
    size = parse_size(kv.get("size", "240x320"))
    overlays = parse_bool(kv.get("overlays", "true"), "overlays")
    fps = float(kv.get("fps", "30"))
    max_steps = parse_int(kv["max_steps"], "max_steps") if "max_steps" in kv else None
    cameras = parse_cameras(kv.get("camera", ""))
    if "out" in kv:  # checked before anything is rendered
        reason = unwritable_reason(kv["out"], "file")
        if reason:
            raise UsageError(f"out={kv['out']!r} {reason}; choose a file in an existing writable directory")
    env, policy, default_out = policy_and_env(kv, seed)
    out = kv.get("out", f"{default_out}.{fmt}")
    reason = unwritable_reason(os.path.dirname(os.path.abspath(out)), "directory")
    if reason:
        env.close()
        raise UsageError(f"video directory {os.path.dirname(out)!r} {reason}; pass out=FILE")
    try:
        recordings = record_rollouts(env, policy, episodes, cameras, size=size, overlays=overlays, seed=seed,
                                     max_steps=max_steps)
    finally:
        env.close()
    frames = [frame for rec in recordings for frame in rec.frames]
    path = write_video(frames, out, fps=fps, format=fmt)
    print(f"wrote {path} ({len(frames)} frames, returns {[round(rec.episode_return, 2) for rec in recordings]})")
    return 0
