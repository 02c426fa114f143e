"""``ezrobot eval run_dir=R [episodes=N] [checkpoint=PATH] [seed=S] [device=D]``: evaluation metrics as JSON."""
from __future__ import annotations

import json
from typing import List

from ezrobot.runs import load_run
from ezrobot.usage import UsageError, parse_kv, parse_positive_int

ALLOWED = {"run_dir": "run directory", "episodes": "episodes", "checkpoint": "checkpoint dir", "seed": "seed",
           "device": "device"}


def main(args: List[str]) -> int:
    """Evaluate the newest (or the chosen) checkpoint of a run with the deterministic search."""
    kv = parse_kv(args, ALLOWED)
    if "run_dir" not in kv:
        raise UsageError("eval needs run_dir=R")
    run = load_run(kv["run_dir"], kv.get("checkpoint"), kv.get("device", "auto"))
    episodes = parse_positive_int(kv.get("episodes", str(run.cfg.eval.episodes)), "episodes")
    seed = int(kv.get("seed", 10_000 + run.cfg.seed))
    stats = run.parts.evaluator.episodes(run.parts.model, episodes, seed)
    stats.update({"checkpoint": run.checkpoint, "env_steps": run.env_steps})
    print(json.dumps(stats))
    return 0
