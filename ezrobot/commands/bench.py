"""``ezrobot bench search|dmc|atari100k|update|memory|probe|adapt|distributed [options]``: benchmarks that
print JSON (search engine throughput, the DMC and Atari 100k protocols, learner update cost, resident memory
once the replay is full, what a trained agent's search knows, fine-tuning against training from scratch,
distributed runs against the embedded trainer); each benchmark module parses its own options."""
from __future__ import annotations

from typing import List

from ezrobot.usage import UsageError

BENCHES = ("search", "dmc", "atari100k", "update", "memory", "probe", "adapt", "distributed")


def main(args: List[str]) -> int:
    """Dispatch ``ezrobot bench <name> [options]``."""
    if not args or args[0] in ("-h", "--help"):
        print("usage: ezrobot bench search [--json] | ezrobot bench dmc --tasks T1,T2 --obs proprio|pixels "
              "--env-steps N --seeds 0,1,2 [--out DIR] | ezrobot bench atari100k --games G1,G2|all --seeds 0,1,2 "
              "[--env-steps N] [--experiment E] [--out DIR] [--json] | ezrobot bench update [--experiment E] "
              "[--variant \"k=v ...\"] [--json] | ezrobot bench memory [--experiment E] [--capacity N] [--minutes M] "
              "[--interval S] [--out FILE] [--json] | ezrobot bench probe RUN_DIR [--states N] [--horizon H] "
              "[--json] | ezrobot bench adapt --pairs SRC:TGT[,...]|acceptance --seeds 0,1 --env-steps N "
              "[--adapt \"k=v ...\"] [--out DIR] [--json] | ezrobot bench distributed [--experiment E] "
              "[--actors 1,2] [--env-steps N] [--repeats R] [--out DIR] [--json]")
        return 0
    name, rest = args[0], args[1:]
    if name == "search":  # each benchmark imports only what it runs (search: the engine without torch models)
        from ezrobot.bench import search
        return search.main(rest)
    if name == "dmc":
        from ezrobot.bench import dmc
        return dmc.main(rest)
    if name == "atari100k":
        from ezrobot.bench import atari
        return atari.main(rest)
    if name == "update":
        from ezrobot.bench import update
        return update.main(rest)
    if name == "memory":
        from ezrobot.bench import memory
        return memory.main(rest)
    if name == "probe":
        from ezrobot.bench import probe
        return probe.main(rest)
    if name == "adapt":
        from ezrobot.bench import adapt
        return adapt.main(rest)
    if name == "distributed":
        from ezrobot.bench import distributed
        return distributed.main(rest)
    raise UsageError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHES)}")
