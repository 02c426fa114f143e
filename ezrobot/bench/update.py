"""``ezrobot bench update``: seconds per learner update of a preset, split into its two halves.

Each variant (the preset alone is the baseline; every ``--variant`` adds its overrides on top) is built as a
fresh run in a temporary folder, its replay filled with ``--replay`` (default ``train.start_transitions``)
random-policy agent steps (more if none is sampleable yet), and then timed over ``--repeats`` blocks of
``--updates`` updates each (after ``--warmup`` untimed ones). The update counter starts past
``train.consistency_start`` and the warm-up, so every timed update pays for the whole loss. Reported per
variant: the median over blocks of seconds per update, of the batch building (``Trainer.sample_batch``: replay
sample and gather + target-network bootstrap values + any reanalysis search) and of the gradient step
(``Trainer.learn``: the learner update, priorities and weight refreshes),
the bootstrap-value cache's hit rate at the end, and the speed-up of the median against the baseline.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Dict, List

import numpy as np

from ezrobot.factory import build_training
from ezrobot.hydra_config import load_config
from ezrobot.logger import MetricsLogger
from ezrobot.trainer import Trainer
from ezrobot.usage import UsageError


def _parse(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ezrobot bench update", description=__doc__)
    p.add_argument("--experiment", default="dmc_pixels_cpu", help="preset to time")
    p.add_argument("--task", default="", help="task override (default: the preset's)")
    p.add_argument("--updates", type=int, default=20, help="timed updates per block")
    p.add_argument("--repeats", type=int, default=5, help="timed blocks per variant (the median is quoted)")
    p.add_argument("--warmup", type=int, default=3, help="untimed updates before the blocks")
    p.add_argument("--replay", type=int, default=0,
                   help="random-policy agent steps in the replay before timing (default: train.start_transitions;"
                        " the bootstrap-value cache's hit rate depends on it)")
    p.add_argument("--variant", action="append", default=[],
                   help="space-separated overrides timed against the baseline (repeatable)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    p.add_argument("overrides", nargs="*", help="overrides applied to the baseline and every variant")
    return p.parse_args(argv)


def time_variant(base: List[str], variant: List[str], args: argparse.Namespace) -> Dict:
    """Median seconds per update (total, batch building, gradient step) of one configuration."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config([*base, f"run_dir={tmp}/run", "log.progress=false", *variant])
        parts, training = build_training(cfg)
        trainer = Trainer(parts, training, MetricsLogger(cfg.run_dir))
        fill = args.replay or cfg.train.start_transitions
        while trainer.c.agent_steps < fill or training.replay.num_sampleable == 0:
            trainer.collect()
        trainer.c.updates = max(cfg.train.consistency_start, cfg.optim.warmup_steps)
        for _ in range(args.warmup):
            trainer.update()
        totals, batches, steps = [], [], []
        for _ in range(args.repeats):
            batch_s, step_s = [], []
            start = time.perf_counter()
            for _ in range(args.updates):
                t0 = time.perf_counter()
                sampled = trainer.sample_batch()
                t1 = time.perf_counter()
                trainer.learn(*sampled)
                batch_s.append(t1 - t0)
                step_s.append(time.perf_counter() - t1)
            totals.append((time.perf_counter() - start) / args.updates)
            batches.append(float(np.mean(batch_s)))
            steps.append(float(np.mean(step_s)))
        hit_rate = trainer.last_metrics.get("reanalyze/value_cache_hit_rate")
    return {"overrides": " ".join(variant) or "(baseline)", "s_per_update": float(np.median(totals)),
            "replay_transitions": int(trainer.c.agent_steps), "value_cache_hit_rate": hit_rate,
            "make_batch_s": float(np.median(batches)), "learner_update_s": float(np.median(steps)),
            "s_per_update_blocks": [round(x, 4) for x in totals]}


def main(argv: List[str]) -> int:
    """Time the baseline and every variant; print a table (or JSON with ``--json``)."""
    args = _parse(argv)
    for name in ("updates", "repeats"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} {getattr(args, name)!r} must be >= 1")
    for name in ("warmup", "replay"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name} {getattr(args, name)!r} must be >= 0")
    base = [f"experiment={args.experiment}", *([f"task={args.task}"] if args.task else []), *args.overrides]
    rows = [time_variant(base, [], args)]
    rows += [time_variant(base, v.split(), args) for v in args.variant]
    for row in rows:
        row["speedup"] = round(rows[0]["s_per_update"] / row["s_per_update"], 3)
        row["experiment"] = args.experiment
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['s_per_update']:.4f} s/update (batch {row['make_batch_s']:.4f}, step "
                  f"{row['learner_update_s']:.4f}) x{row['speedup']:.2f}  {row['overrides']}")
    return 0
