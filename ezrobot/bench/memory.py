"""``ezrobot bench memory``: does the resident memory (RSS) of a training run stay flat once its replay is full?

It trains a preset (default ``dmc_proprio``, a proprio one) in a temporary run directory with a small replay
(``--capacity`` positions) and an env-step budget it never reaches, through the ordinary training loop
(self-play, updates, evaluations and checkpoints). From the moment the replay is full it samples the process's
RSS (psutil when installed, else ``VmRSS`` of ``/proc/self/status``) every ``--interval`` seconds for
``--minutes`` minutes, then stops the run. Reported: the RSS at fill, its maximum and last value, the growth
of the last and of the maximum sample over the one at fill (percent), and whether the maximum growth stays
within ``--limit`` percent (``flat``). The rows go to a table on stdout and, with every sample, to the JSON
file ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from typing import Dict, List, Optional

from ezrobot.factory import build_training
from ezrobot.hydra_config import load_config
from ezrobot.interrupt import StopRequest, TrainingInterrupted
from ezrobot.logger import MetricsLogger
from ezrobot.trainer import Trainer
from ezrobot.usage import UsageError, unwritable_reason

MIB = 2 ** 20


def rss_bytes() -> int:
    """Resident set size of this process in bytes (psutil if installed, else ``/proc/self/status``)."""
    try:
        import psutil
        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    raise OSError("cannot read the resident memory: install psutil")


class RssWatch(StopRequest):
    """The stop flag the trainer polls after every agent step: once the replay is full it samples RSS every
    ``interval`` seconds and, ``seconds`` after the fill, asks the trainer to stop (a signal still stops it too).

    Args:
        replay: The run's replay (full when ``len(replay) == replay.capacity``).
        seconds: How long to sample after the fill.
        interval: Seconds between samples.
    """

    def __init__(self, replay, seconds: float, interval: float):
        super().__init__()
        self.replay, self.seconds, self.interval = replay, float(seconds), float(interval)
        self.samples: List[Dict[str, float]] = []
        self.finished = False
        self._fill: Optional[float] = None
        self._next = 0.0

    def _sample(self, now: float) -> None:
        self.samples.append({"s_after_fill": round(now - self._fill, 2), "rss_mb": round(rss_bytes() / MIB, 2)})

    @property
    def requested(self) -> bool:
        """True after a stop signal or when the sampling time is over (then :attr:`finished` is set)."""
        if self.signum is not None:
            return True
        now = time.perf_counter()
        if self._fill is None:
            if len(self.replay) < self.replay.capacity:
                return False
            self._fill, self._next = now, now
        if now >= self._next or now - self._fill >= self.seconds:
            self._sample(now)
            self._next += self.interval
        if now - self._fill >= self.seconds:
            self.finished, self.signum = True, int(signal.SIGINT)
        return self.finished


def summarize(samples: List[Dict[str, float]], limit_pct: float) -> Dict[str, float]:
    """RSS at fill, max and last (MiB), the growth of the last and the max sample over the first (%)."""
    rss = [s["rss_mb"] for s in samples]
    first = rss[0]
    return {"rss_at_fill_mb": first, "rss_max_mb": max(rss), "rss_last_mb": rss[-1],
            "growth_pct": round(100.0 * (rss[-1] - first) / first, 2),
            "max_growth_pct": round(100.0 * (max(rss) - first) / first, 2),
            "flat": bool(100.0 * (max(rss) - first) / first <= limit_pct)}


def measure(args: argparse.Namespace) -> Dict:
    """Train until ``--minutes`` after the replay is full; return the result row with every sample."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config([f"experiment={args.experiment}", *([f"task={args.task}"] if args.task else []),
                           f"replay.capacity={args.capacity}", f"env_steps={10 ** 9}", "log.progress=false",
                           *args.overrides, f"run_dir={tmp}/run"])
        parts, training = build_training(cfg)
        os.makedirs(cfg.run_dir, exist_ok=True)
        trainer = Trainer(parts, training, MetricsLogger(cfg.run_dir))
        watch = RssWatch(training.replay, args.minutes * 60.0, args.interval)
        start = time.perf_counter()
        try:
            trainer.run(watch)
        except TrainingInterrupted:
            if not watch.finished:
                raise
        fill_s = time.perf_counter() - start - watch.seconds
    return {"experiment": cfg.experiment, "task": cfg.task, "capacity": training.replay.capacity,
            "replay_mb": round(training.replay.nbytes / MIB, 2), "env_steps": trainer.c.env_steps,
            "updates": trainer.c.updates, "fill_s": round(fill_s, 1), "minutes": args.minutes,
            "interval_s": args.interval, "limit_pct": args.limit,
            **summarize(watch.samples, args.limit), "samples": watch.samples}


COLUMNS = ("experiment", "task", "capacity", "replay_mb", "minutes", "rss_at_fill_mb", "rss_max_mb",
           "rss_last_mb", "growth_pct", "max_growth_pct", "flat")


def table(row: Dict) -> str:
    """The row as a two-line markdown table (header and values)."""
    return "\n".join(["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS),
                      "| " + " | ".join(str(row[c]) for c in COLUMNS) + " |"])


def _parse(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ezrobot bench memory", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default="dmc_proprio", help="preset to train (default dmc_proprio)")
    p.add_argument("--task", default="", help="task override (default: the preset's)")
    p.add_argument("--capacity", type=int, default=5000, help="replay.capacity in positions")
    p.add_argument("--minutes", type=float, default=30.0, help="how long to sample after the replay is full")
    p.add_argument("--interval", type=float, default=30.0, help="seconds between RSS samples")
    p.add_argument("--limit", type=float, default=5.0, help="largest growth in percent still called flat")
    p.add_argument("--out", default="runs/bench_memory.json", help="JSON file for the row and its samples")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    p.add_argument("overrides", nargs="*", help="extra config overrides key=value")
    return p.parse_args(argv)


def main(argv: List[str]) -> int:
    """Measure, write ``--out`` and print the table (or the JSON with ``--json``)."""
    args = _parse(argv)
    for name in ("capacity", "minutes", "interval"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name} {getattr(args, name)!r} must be > 0")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    reason = unwritable_reason(out_dir, "directory") or (os.makedirs(out_dir, exist_ok=True) or
                                                         unwritable_reason(args.out, "file"))
    if reason:
        raise UsageError(f"--out {args.out!r} {reason}")
    row = measure(args)
    with open(args.out, "w") as f:
        json.dump(row, f, indent=2)
    print(json.dumps(row, indent=2) if args.json else table(row))
    return 0
