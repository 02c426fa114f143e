"""Benchmarks behind ``ezrobot bench``: :mod:`ezrobot.bench.search` (search engine throughput),
:mod:`ezrobot.bench.dmc` (the DMControl protocol over tasks x seeds) and :mod:`ezrobot.bench.update` (seconds
per learner update). Each module's ``main(argv)`` parses its options and prints its results."""
