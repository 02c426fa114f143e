"""``ezrobot bench dmc``: run the DMControl protocol over tasks x seeds and tabulate the final scores beside
published numbers (``ezrobot.bench.published``; docs/REFERENCES.md §3-4).

Each (task, seed) is an ordinary run directory under ``--out``, so an interrupted benchmark resumes where it
stopped, and a finished (task, seed) is not rerun: its ``summary.json`` is reused only when the run
directory's saved config is the one this call would train (same preset, overrides, seed and env-step
budget); otherwise the call stops with one line naming the differing field. Written under ``--out``:
``results.md`` / ``results.csv`` (per task: mean and std over seeds beside the published columns, and the
mean over tasks), ``aggregates.json`` (mean, median, IQM and optimality gap over all runs of the score / 1000,
each with a 95% stratified-bootstrap confidence interval from rliable) and ``curves.png`` (evaluation
return against env steps, one panel per task)."""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List

import numpy as np

from ezrobot.bench import published
from ezrobot.hydra_config import load_config
from ezrobot.runs import parse_seeds, train_or_reuse
from ezrobot.usage import UsageError

PRESETS = {"proprio": "dmc_proprio", "pixels": "dmc_pixels"}
COLUMNS = {"proprio": ("EZ-V2", "TD-MPC2", "DreamerV3", "SAC"),
           "pixels": ("CURL", "DrQ", "DreamerV3", "EZ-V2", "EZ-V2@200k")}
TABLES = {"proprio": published.DMC_PROPRIO, "pixels": published.DMC_PIXELS}
MAX_SCORE = 1000.0
"""DMC episode returns lie in [0, 1000]; aggregates are computed on score / MAX_SCORE."""


def _parse(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ezrobot bench dmc", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="cartpole-swingup,reacher-easy", help="comma-separated domain-task")
    p.add_argument("--obs", choices=("proprio", "pixels"), default="proprio")
    p.add_argument("--env-steps", type=int, default=100_000, help="budget per run in env steps")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--experiment", default="", help="preset (default dmc_proprio / dmc_pixels)")
    p.add_argument("--out", default="runs/bench_dmc", help="folder for the runs and the tables")
    p.add_argument("--json", action="store_true", help="print the rows and aggregates as JSON")
    p.add_argument("overrides", nargs="*", help="extra config overrides key=value")
    return p.parse_args(argv)


def _run_one(task: str, seed: int, args: argparse.Namespace) -> Dict:
    """Train (or resume) one (task, seed), or reuse its finished summary when the saved config matches."""
    experiment = args.experiment or PRESETS[args.obs]
    run_dir = os.path.join(args.out, f"{task}-s{seed}")
    cfg = load_config([f"experiment={experiment}", f"task=dmc/{task}", f"seed={seed}",
                       f"env_steps={args.env_steps}", f"run_dir={run_dir}", "log.progress=false",
                       *args.overrides])
    return train_or_reuse(cfg)


def main(argv: List[str]) -> int:
    """Run every (task, seed), then write the tables, aggregates and curves under ``--out``."""
    from ezrobot.bench import report

    args = _parse(argv)
    seeds = parse_seeds(args.seeds)
    if args.env_steps <= 0:
        raise UsageError(f"--env-steps {args.env_steps} must be a positive number of env steps")
    tasks = [t for t in args.tasks.split(",") if t]
    finals: Dict[str, List[float]] = {}
    curves: Dict[str, Dict[int, list]] = {}
    for task in tasks:
        finals[task] = [float(_run_one(task, s, args)["final_eval_return_mean"]) for s in seeds]
        curves[task] = {s: report.read_curves(os.path.join(args.out, f"{task}-s{s}")) for s in seeds}
    methods = COLUMNS[args.obs]
    rows = report.per_task_rows(finals, TABLES[args.obs], methods)
    columns = ("task", "seeds", "mean", "std", *methods)
    title = (f"{args.obs} · {args.env_steps:,} env steps · preset {args.experiment or PRESETS[args.obs]} · "
             f"seeds {','.join(map(str, seeds))}")
    os.makedirs(args.out, exist_ok=True)
    report.write_csv(rows, columns, os.path.join(args.out, "results.csv"))
    report.write_markdown(rows, columns, os.path.join(args.out, "results.md"), title=title)
    scores = np.array([[finals[t][i] for t in tasks] for i in range(len(seeds))]) / MAX_SCORE
    aggregates = report.aggregate(scores)
    with open(os.path.join(args.out, "aggregates.json"), "w") as f:
        json.dump({"scale": f"score / {MAX_SCORE:g}", "runs": len(seeds), "tasks": tasks, **aggregates}, f, indent=2)
    report.plot_curves(curves, os.path.join(args.out, "curves.png"), title=title)
    if args.json:
        print(json.dumps({"rows": rows, "aggregates": aggregates}))
    else:
        print(report.markdown_table(rows, columns))
        print("\n".join(f"{name}: {a['point']:.3f} [{a['low']:.3f}, {a['high']:.3f}] (score / {MAX_SCORE:g}, "
                        f"95% CI)" for name, a in aggregates.items()))
    return 0
