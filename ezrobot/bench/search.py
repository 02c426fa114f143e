"""``ezrobot bench search [--json]``: throughput of the tree search on a fake model (no network).

Protocol (issue 3): each simulation's outputs are gathered from precomputed seed-0 random tables (values
U(-1, 1), value prefixes U(-0.1, 0.1), logits / Gaussian head params N(0, 1)); discount 0.997, c1 1.25,
c2 19652, Dirichlet 0.3 / 0.25 (training-mode searches). Workloads: W1 discrete B=256, A=18; W2 B=8, A=18;
W3 continuous B=256, K=20, D=6; W4 B=1024, A=18; N=50 simulations each, for the pUCT and the Gumbel variant.
The whole search call is timed (Python loop and fake model included), after one warm-up call, and the
median of ``--repeats`` runs is reported with sims_per_s = B * N / seconds. The same runs' median thread CPU
time is reported too (``cpu_sims_per_s``): on a shared machine it is not inflated by time spent
descheduled. ``--cold`` also measures the numba compile time in a fresh process with an empty cache
directory.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import List

import numpy as np

from ezrobot.mcts import RecurrentOutput, RootInput, SearchConfig, search


@dataclass(frozen=True)
class Workload:
    """One benchmark shape."""

    name: str
    batch: int
    width: int
    """A for discrete workloads, D (action dimension) for continuous ones."""
    continuous: bool
    num_sampled_actions: int = 20


WORKLOADS = {
    "W1": Workload("W1", 256, 18, False),
    "W2": Workload("W2", 8, 18, False),
    "W3": Workload("W3", 256, 6, True),
    "W4": Workload("W4", 1024, 18, False),
}


class FakeModel:
    """Precomputed seed-0 tables; simulation s (child slot s + 1) reads row s.

    Args:
        batch: B.
        policy_width: A logits, or 2 D Gaussian head params.
        num_simulations: N.
    """

    def __init__(self, batch: int, policy_width: int, num_simulations: int):
        rng = np.random.default_rng(0)
        self.values = rng.uniform(-1, 1, (num_simulations + 1, batch)).astype(np.float32)
        self.value_prefixes = rng.uniform(-0.1, 0.1, (num_simulations + 1, batch)).astype(np.float32)
        self.policies = rng.standard_normal((num_simulations + 1, batch, policy_width)).astype(np.float32)

    def root(self, discount: float, continuous: bool) -> RootInput:
        """The root input (table row 0)."""
        return RootInput(self.values[0], self.policies[0], discount, continuous)

    def __call__(self, parent_slots, actions, child_slots, reset) -> RecurrentOutput:
        s = int(child_slots[0])
        return RecurrentOutput(self.values[s], self.value_prefixes[s], self.policies[s])


def variant_name(variant: str, continuous: bool) -> str:
    """``puct``, ``gumbel``, ``sampled_puct`` or ``sampled_gumbel``."""
    return f"sampled_{variant}" if continuous else variant


def bench_one(work: Workload, variant: str, num_simulations: int, repeats: int) -> dict:
    """Time ``repeats`` training-mode searches after one warm-up; return the JSON record."""
    width = 2 * work.width if work.continuous else work.width
    model = FakeModel(work.batch, width, num_simulations)
    cfg = SearchConfig(variant=variant, num_simulations=num_simulations,
                       num_sampled_actions=work.num_sampled_actions)
    root = model.root(0.997, work.continuous)
    rng = np.random.default_rng(0)
    search(root, model, cfg, rng, train=True)
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.thread_time()
        out = search(root, model, cfg, rng, train=True)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.thread_time() - cpu_start)
    if int(out.visit_counts.sum()) != work.batch * num_simulations:
        raise RuntimeError("root visit counts do not sum to B * N")
    med, cpu_med = float(np.median(times)), float(np.median(cpu_times))
    sims = work.batch * num_simulations
    return {"workload": work.name, "variant": variant_name(variant, work.continuous), "batch": work.batch,
            "simulations": num_simulations, "seconds_median": med, "sims_per_s": sims / med,
            "cpu_seconds_median": cpu_med, "cpu_sims_per_s": sims / max(cpu_med, 1e-9), "repeats": repeats}


_COLD_SNIPPET = """
import time, numpy as np
t0 = time.perf_counter()
from ezrobot.bench.search import WORKLOADS, FakeModel
from ezrobot.mcts import SearchConfig, search
for cont in (False, True):
    w = WORKLOADS['W3' if cont else 'W2']
    m = FakeModel(w.batch, 2 * w.width if cont else w.width, 4)
    for variant in ('puct', 'gumbel'):
        search(m.root(0.997, cont), m, SearchConfig(variant=variant, num_simulations=4), np.random.default_rng(0),
               train=True)
print(time.perf_counter() - t0)
"""


def cold_compile_seconds() -> dict:
    """Import + first searches of all four variants in fresh processes: empty numba cache vs. warm cache."""
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        result = {}
        for key in ("cold_compile_s", "cached_load_s"):
            proc = subprocess.run([sys.executable, "-c", _COLD_SNIPPET], env=env, capture_output=True, text=True,
                                  check=True)
            result[key] = float(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: List[str]) -> int:
    """Run the benchmark; print a table, or a JSON list with ``--json``."""
    parser = argparse.ArgumentParser(prog="ezrobot bench search", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON list of records")
    parser.add_argument("--workloads", default="W1,W2,W3,W4", help="comma-separated subset of W1,W2,W3,W4")
    parser.add_argument("--variants", default="puct,gumbel", help="comma-separated subset of puct,gumbel")
    parser.add_argument("--simulations", type=int, default=50, help="N (default 50)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per record (>= 5 for the protocol)")
    parser.add_argument("--cold", action="store_true", help="also measure the cold numba compile time")
    args = parser.parse_args(argv)
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for name in names:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    for variant in variants:
        if variant not in ("puct", "gumbel"):
            parser.error(f"unknown variant {variant!r}; choose puct or gumbel")
    if args.simulations < 1 or args.repeats < 1:
        parser.error("--simulations and --repeats must be >= 1")
    records = [bench_one(WORKLOADS[n], v, args.simulations, args.repeats) for n in names for v in variants]
    if args.cold:
        records.append({"workload": "compile", **cold_compile_seconds()})
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    for r in records:
        if r["workload"] == "compile":
            print(f"numba compile: cold {r['cold_compile_s']:.2f} s, cached {r['cached_load_s']:.2f} s")
        else:
            print(f"{r['workload']:3s} {r['variant']:15s} B={r['batch']:5d} N={r['simulations']:3d} "
                  f"{r['seconds_median'] * 1e3:9.3f} ms  {r['sims_per_s'] / 1e3:9.1f}k sims/s  "
                  f"(CPU {r['cpu_sims_per_s'] / 1e3:.1f}k)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
