"""``ezrobot bench distributed``: env steps/s and updates/s of the embedded trainer and of distributed runs
with 1, 2, ... self-play actors, on the same preset and budget, in one call.

Each configuration trains a fresh run in a temporary folder (``--env-steps``, evaluation only at the end)
``--repeats`` times; a row gives the medians over the repeats of the trainer's own rates (its clock, which
starts after the parts are built and, for a distributed run, before Ray places the roles) and of the whole
call's wall time, the final evaluation return, and the ratio of the env-step rate to the embedded trainer's
of this call. The replay ratio is the preset's in every row, so the updates per env step are the same and
the rates compare the collection-learning pipeline, not different amounts of learning.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Dict, List

import numpy as np

from ezrobot.hydra_config import load_config
from ezrobot.runs import train
from ezrobot.usage import UsageError


def _parse(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ezrobot bench distributed", description=__doc__)
    p.add_argument("--experiment", default="cartpole", help="preset of every run")
    p.add_argument("--task", default="", help="task override (default: the preset's)")
    p.add_argument("--actors", default="1,2", help="self-play actor counts to time, comma-separated")
    p.add_argument("--reanalyzers", type=int, default=1, help="reanalyze workers of the distributed runs")
    p.add_argument("--env-steps", type=int, default=3000, help="budget of every run")
    p.add_argument("--repeats", type=int, default=1, help="runs per configuration (medians are quoted)")
    p.add_argument("--out", default="", help="folder for results.json and results.md (default: print only)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    p.add_argument("overrides", nargs="*", help="overrides of every run")
    return p.parse_args(argv)


def _actor_counts(text: str) -> List[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UsageError(f"--actors {text!r} must be positive integers separated by commas (e.g. 1,2)")
    return counts


def time_config(base: List[str], extra: List[str], repeats: int) -> Dict:
    """Median rates of ``repeats`` fresh runs of ``base + extra``."""
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_config([*base, *extra, f"run_dir={tmp}/run", "log.progress=false"])
            start = time.perf_counter()
            summary = train(cfg)
            runs.append({**summary, "call_s": time.perf_counter() - start})
    med = {k: float(np.median([r[k] for r in runs])) for k in ("env_steps_per_s", "updates_per_s", "call_s")}
    return {"config": " ".join(extra) or "embedded", **{k: round(v, 3) for k, v in med.items()},
            "final_eval_return": [r["final_eval_return_mean"] for r in runs], "repeats": repeats,
            "env_steps": runs[0]["env_steps"], "updates": runs[0]["train_steps"]}


def table(rows: List[Dict]) -> str:
    """The rows as a markdown table."""
    lines = ["| configuration | env steps/s | updates/s | x embedded (env steps/s) | call wall s | final eval |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        evals = " / ".join(f"{x:.1f}" for x in r["final_eval_return"] if x is not None)
        lines.append(f"| {r['config']} | {r['env_steps_per_s']:.1f} | {r['updates_per_s']:.1f} | "
                     f"{r['speedup']:.2f} | {r['call_s']:.0f} | {evals} |")
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    """Time the embedded trainer and each actor count; print a table (or JSON with ``--json``)."""
    args = _parse(argv)
    counts = _actor_counts(args.actors)
    for name in ("env_steps", "repeats"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} {getattr(args, name)!r} must be >= 1")
    if args.reanalyzers < 0:
        raise UsageError(f"--reanalyzers {args.reanalyzers!r} must be >= 0")
    base = [f"experiment={args.experiment}", *([f"task={args.task}"] if args.task else []),
            f"env_steps={args.env_steps}", f"eval.interval={args.env_steps}", *args.overrides]
    rows = [time_config(base, [], args.repeats)]
    rows += [time_config(base, ["distributed=ray", f"distributed.num_actors={n}",
                                f"distributed.num_reanalyzers={args.reanalyzers}"], args.repeats) for n in counts]
    for row in rows:
        row["speedup"] = round(row["env_steps_per_s"] / rows[0]["env_steps_per_s"], 3)
        row["experiment"] = args.experiment
    text = table(rows)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(rows, f, indent=2)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(f"`ezrobot bench distributed --experiment {args.experiment} --actors {args.actors} "
                    f"--env-steps {args.env_steps} --repeats {args.repeats}`\n\n{text}\n")
    print(json.dumps(rows, indent=2) if args.json else text)
    return 0
