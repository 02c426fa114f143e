"""``ezrobot bench dmc``: run the DMControl protocol over tasks x seeds and tabulate the final scores
beside published numbers (docs/REFERENCES.md §3-4). Each (task, seed) is an ordinary run directory
under ``--out``, so an interrupted benchmark resumes where it stopped."""
from __future__ import annotations

import argparse
import csv
import json
import os
from typing import Dict, List

import numpy as np

from ezrobot.hydra_config import load_config
from ezrobot.runs import train
from ezrobot.usage import UsageError

# EfficientZero V2 per-task scores (docs/REFERENCES.md §3); the env-step budget of each number in brackets there.
PUBLISHED = {
    "proprio": {"cartpole-swingup": 805, "reacher-easy": 940, "walker-walk": 940, "cheetah-run": 595,
                "ball_in_cup-catch": 960, "cup-catch": 960, "finger-spin": 835},
    "pixels": {"cartpole-swingup": 745, "reacher-easy": 960, "walker-walk": 880, "cheetah-run": 620,
               "ball_in_cup-catch": 970, "cup-catch": 970, "finger-spin": 925},
}
PUBLISHED_BUDGET = {"proprio": "EZ-V2 @100k env steps", "pixels": "EZ-V2 @200k env steps"}
PRESETS = {"proprio": "dmc_proprio", "pixels": "dmc_pixels"}


def _parse(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ezrobot bench dmc", description=__doc__)
    p.add_argument("--tasks", default="cartpole-swingup,reacher-easy", help="comma-separated domain-task")
    p.add_argument("--obs", choices=("proprio", "pixels"), default="proprio")
    p.add_argument("--env-steps", type=int, default=100_000, help="budget per run in env steps")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--experiment", default="", help="preset (default dmc_proprio / dmc_pixels)")
    p.add_argument("--out", default="runs/bench_dmc", help="folder for the runs and the tables")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("overrides", nargs="*", help="extra config overrides key=value")
    return p.parse_args(argv)


def _run_one(task: str, seed: int, args: argparse.Namespace) -> Dict:
    experiment = args.experiment or PRESETS[args.obs]
    run_dir = os.path.join(args.out, f"{task}-s{seed}")
    overrides = [f"experiment={experiment}", f"task=dmc/{task}", f"seed={seed}",
                 f"env_steps={args.env_steps}", f"run_dir={run_dir}", "log.progress=false", *args.overrides]
    summary_path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(summary_path):
        print(json.dumps(train(load_config(overrides))))  # the summary line `ezrobot train` prints
    with open(summary_path) as f:
        return json.load(f)


def main(argv: List[str]) -> int:
    """Run every (task, seed), then write ``results.csv`` and ``results.md`` under ``--out``."""
    args = _parse(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        raise UsageError(f"--seeds {args.seeds!r} must be comma-separated integers") from None
    tasks = [t for t in args.tasks.split(",") if t]
    rows = []
    for task in tasks:
        finals = [_run_one(task, s, args)["final_eval_return_mean"] for s in seeds]
        finals = [float(x) for x in finals if x is not None]
        rows.append({"task": task, "obs": args.obs, "env_steps": args.env_steps, "seeds": len(finals),
                     "mean": float(np.mean(finals)), "std": float(np.std(finals)),
                     "published": PUBLISHED[args.obs].get(task), "published_source": PUBLISHED_BUDGET[args.obs]})
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| task | obs | env steps | seeds | ezrobot (mean ± std) | published |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['obs']} | {r['env_steps']} | {r['seeds']} | {r['mean']:.1f} ± {r['std']:.1f} "
              f"| {r['published'] if r['published'] is not None else '–'} ({r['published_source']}) |" for r in rows]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(json.dumps(rows) if args.json else "\n".join(lines))
    return 0
