"""``ezrobot bench atari100k``: run the Atari 100k protocol over games x seeds and tabulate the final scores
beside published numbers (``ezrobot.bench.published.ATARI100K``; docs/REFERENCES.md).

Protocol: 100k agent steps = 400k frames (frame skip 4) per run, so ``--env-steps`` (frames) defaults to
400,000 whatever the preset's own budget. A run's score is its final evaluation return (the summary's
``final_eval_return_mean``): the raw game score, since evaluation never clips rewards nor ends at a life loss.
The human-normalised score is HNS = (score - random) / (human - random), with the random / human pair of the
published table. The aggregates (mean, median, IQM and optimality gap of the ``[runs, games]`` HNS matrix,
each with a 95% stratified-bootstrap confidence interval) come from rliable (R. Agarwal et al., *Deep RL at
the Edge of the Statistical Precipice*, NeurIPS 2021, arXiv 2108.13264) through ``report.aggregate``.

Each (game, seed) is an ordinary run directory ``<out>/<Game>-s<seed>`` (``task=atari/<Game>``), so an
interrupted benchmark resumes where it stopped, and a finished (game, seed) is not rerun: its ``summary.json``
is reused only when the run directory's saved config is the one this call would train; otherwise the call
stops with one line naming the differing field. Written under ``--out``: ``results.md`` / ``results.csv``
(per game: seeds, mean and std of the raw score, the HNS of the mean, and the published columns),
``aggregates.json`` (the four aggregates and the number of games at or above human level), ``hns.png``
(per-game HNS bars) and ``curves.png`` (evaluation return against env steps, one panel per game)."""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from ezrobot.bench import published
from ezrobot.hydra_config import load_config
from ezrobot.runs import parse_seeds, train_or_reuse
from ezrobot.usage import UsageError, suggest

METHODS = published.ATARI_COLUMNS
"""The published columns beside ours: random, human, SPR, EfficientZero, EZ-V2, BBF."""
COLUMNS = ("game", "seeds", "mean", "std", "hns", *METHODS)
ENV_STEPS = 400_000
"""100k agent steps at frame skip 4."""


def _parse(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ezrobot bench atari100k", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", default="Breakout,Pong", help="comma-separated games of the Atari 100k set, or all")
    p.add_argument("--env-steps", type=int, default=ENV_STEPS, help="budget per run in env steps (frames)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--experiment", default="atari_cpu", help="preset")
    p.add_argument("--out", default="runs/bench_atari100k", help="folder for the runs and the tables")
    p.add_argument("--json", action="store_true", help="print the rows and aggregates as JSON")
    p.add_argument("overrides", nargs="*", help="extra config overrides key=value")
    return p.parse_args(argv)


def _games(text: str) -> List[str]:
    """The games named by ``--games`` (``all``: the 26 of the table), checked against the published table."""
    if text.strip() == "all":
        return list(published.ATARI_GAMES)
    games = list(dict.fromkeys(g.strip() for g in text.split(",") if g.strip()))
    if not games:
        raise UsageError("--games must name at least one game, or all")
    for game in games:
        if game not in published.ATARI100K:
            raise UsageError(f"--games: unknown Atari 100k game {game!r}{suggest(game, published.ATARI_GAMES)}; "
                             f"choose from all, {', '.join(published.ATARI_GAMES)}")
    return games


def _run_one(game: str, seed: int, args: argparse.Namespace) -> Dict:
    """Train (or resume) one (game, seed), or reuse its finished summary when the saved config matches."""
    run_dir = os.path.join(args.out, f"{game}-s{seed}")
    cfg = load_config([f"experiment={args.experiment}", f"task=atari/{game}", f"seed={seed}",
                       f"env_steps={args.env_steps}", f"run_dir={run_dir}", "log.progress=false", *args.overrides])
    return train_or_reuse(cfg)


def tabulate(finals: Mapping[str, Sequence[float]], reps: int = 2000) -> Tuple[List[Dict], Dict]:
    """Rows and aggregates of the final raw scores ``{game: [score per seed]}`` (same seeds for every game).

    Each row: ``game``, ``seeds``, ``mean`` and ``std`` (sample, over seeds) of the raw score, ``hns`` (the HNS
    of the mean) and the published columns ``METHODS``. The aggregates: ``mean``, ``median``, ``iqm`` and
    ``optimality_gap`` of the ``[runs, games]`` HNS matrix (``report.aggregate``: ``{"point", "low",
    "high"}``), ``above_human`` (games whose mean HNS >= 1), ``runs`` and ``games``.
    """
    from ezrobot.bench import report

    games = list(finals)
    rows = report.per_task_rows(finals, published.ATARI100K, METHODS)[:-1]  # a mean of raw scores means nothing
    for row in rows:
        row["game"] = row.pop("task")
        row["hns"] = published.hns(row["game"], row["mean"])
    runs = {len(v) for v in finals.values()}
    if len(runs) != 1:
        raise ValueError(f"every game needs the same number of runs, got {sorted(runs)}")
    matrix = np.array([[published.hns(g, finals[g][i]) for g in games] for i in range(runs.pop())])
    aggregates = report.aggregate(matrix, reps=reps)
    above = sum(1 for row in rows if row["hns"] >= 1.0)
    return rows, {"scale": "human-normalised score", "runs": matrix.shape[0], "games": games, **aggregates,
                  "above_human": above}


def _shown(rows: List[Dict]) -> List[Dict]:
    """``rows`` for a Markdown table: the HNS with 3 decimals (the tables print other floats with 1)."""
    return [{**r, "hns": f"{r['hns']:.3f}"} for r in rows]


def _write(rows: List[Dict], aggregates: Dict, curves: Dict, args: argparse.Namespace, title: str) -> None:
    """results.csv / results.md / aggregates.json / hns.png / curves.png under ``--out``."""
    from ezrobot.bench import report

    os.makedirs(args.out, exist_ok=True)
    report.write_csv(rows, COLUMNS, os.path.join(args.out, "results.csv"))
    report.write_markdown(_shown(rows), COLUMNS, os.path.join(args.out, "results.md"), title=title)
    with open(os.path.join(args.out, "aggregates.json"), "w") as f:
        json.dump(aggregates, f, indent=2)
    report.plot_bars({r["game"]: r["hns"] for r in rows}, os.path.join(args.out, "hns.png"), title=title)
    report.plot_curves(curves, os.path.join(args.out, "curves.png"), title=title)


def main(argv: List[str]) -> int:
    """Run every (game, seed), then write the tables, aggregates and plots under ``--out``."""
    from ezrobot.bench import report

    args = _parse(argv)
    games, seeds = _games(args.games), parse_seeds(args.seeds)
    if args.env_steps <= 0:
        raise UsageError(f"--env-steps {args.env_steps} must be a positive number of env steps")
    finals: Dict[str, List[float]] = {}
    curves: Dict[str, Dict[int, list]] = {}
    for game in games:
        finals[game] = [float(_run_one(game, s, args)["final_eval_return_mean"]) for s in seeds]
        curves[game] = {s: report.read_curves(os.path.join(args.out, f"{game}-s{s}")) for s in seeds}
    rows, aggregates = tabulate(finals)
    title = (f"Atari 100k · {args.env_steps:,} env steps · preset {args.experiment} · "
             f"seeds {','.join(map(str, seeds))}")
    _write(rows, aggregates, curves, args, title)
    if args.json:
        print(json.dumps({"rows": rows, "aggregates": aggregates}))
        return 0
    print(report.markdown_table(_shown(rows), COLUMNS))
    for name in report.METRICS:
        a = aggregates[name]
        print(f"{name}: {a['point']:.3f} [{a['low']:.3f}, {a['high']:.3f}] (HNS, 95% CI)")
    print(f"above human: {aggregates['above_human']} of {len(games)} games")
    return 0
