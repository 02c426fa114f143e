"""``ezrobot bench <name>``: benchmarks that print JSON (search engine throughput, DMC protocol, learner update cost)."""
from __future__ import annotations

from typing import List

BENCHES = ("search", "dmc", "update")


def bench_command(args: List[str]) -> int:
    """Dispatch ``ezrobot bench search|dmc [options]``."""
    from ezrobot.cli import UsageError

    if not args or args[0] in ("-h", "--help"):
        print("usage: ezrobot bench search [--json] | ezrobot bench dmc --tasks T1,T2 --obs proprio|pixels "
              "--env-steps N --seeds 0,1,2 [--out DIR] | ezrobot bench update [--experiment E] [--variant \"k=v ...\"] "
              "[--json]")
        return 0
    name, rest = args[0], args[1:]
    if name == "search":
        from ezrobot.bench.search import main
        return main(rest)
    if name == "dmc":
        from ezrobot.bench.dmc import main
        return main(rest)
    if name == "update":
        from ezrobot.bench.update import main
        return main(rest)
    raise UsageError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHES)}")
