"""Results reporting: aggregate scores with bootstrap confidence intervals (rliable; R. Agarwal et al.,
*Deep RL at the Edge of the Statistical Precipice*, NeurIPS 2021, arXiv 2108.13264), per-task tables in
Markdown and CSV beside published numbers (:mod:`ezrobot.bench.published`), learning-curve and bar plots.

Typical use::

    rows = per_task_rows({"cheetah-run": [512.0, 580.0]}, published.DMC_PROPRIO, ["EZ-V2"])
    print(markdown_table(rows, ["task", "mean", "std", "seeds", "EZ-V2"]))
    agg = aggregate(np.array([[hns(g, s) for g, s in run.items()] for run in runs]))
"""
from __future__ import annotations

import csv
import json
import math
import os
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

Curve = List[Tuple[float, float]]
METRICS = ("mean", "median", "iqm", "optimality_gap")


def aggregate(scores: np.ndarray, gap_threshold: float = 1.0, reps: int = 2000, seed: int = 0,
              confidence: float = 0.95) -> Dict[str, Dict[str, float]]:
    """Mean, median, IQM and optimality gap of a ``[runs, tasks]`` score matrix with bootstrap CIs.

    All four come from ``rliable.metrics`` (mean and median are over the per-task means across runs;
    IQM is the 25%-trimmed mean of all run-task scores; the gap is ``gap_threshold`` minus the mean of
    the scores clipped at it). The intervals are percentile CIs of ``confidence`` from
    ``rliable.library.get_interval_estimates`` with ``reps`` replications, reproducible for a ``seed``
    (NumPy's global random state is left as it was):
    stratified over runs within each task, and over tasks too when there is a single run (with one
    run a runs-only bootstrap would always redraw the same matrix and give a zero-width interval).

    Returns ``{metric: {"point", "low", "high"}}`` for the metrics in ``METRICS``.
    """
    library, metrics = _rliable()
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"scores must be a non-empty [runs, tasks] matrix, got shape {x.shape}")

    def all_metrics(m: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_mean(m), metrics.aggregate_median(m), metrics.aggregate_iqm(m),
                         metrics.aggregate_optimality_gap(m, gap_threshold)])

    # rliable's StratifiedBootstrap draws its indices from NumPy's global generator, not from the
    # random_state it is given: seed both, and put the global state back afterwards.
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():  # arch's notice that it will move from RandomState to Generator
            warnings.simplefilter("ignore", FutureWarning)
            points, intervals = library.get_interval_estimates(
                {"x": x}, all_metrics, task_bootstrap=x.shape[0] == 1, reps=reps,
                confidence_interval_size=confidence, random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(saved)
    point, ci = points["x"], intervals["x"]
    return {name: {"point": float(point[i]), "low": float(ci[0, i]), "high": float(ci[1, i])}
            for i, name in enumerate(METRICS)}


def _rliable():
    """Import ``rliable.library`` and ``rliable.metrics`` (the ``bench`` extra, which pins
    ``pandas<3``: rliable needs ``arch<8``, and arch 7 does not import under pandas 3), with one clear line
    when they are missing."""
    try:
        from rliable import library, metrics
    except ImportError as err:
        raise ImportError(f"aggregates need the bench extra: pip install -e '.[bench]' ({err})") from None
    return library, metrics


def _mean_std(values: Sequence[float]) -> Tuple[Optional[float], Optional[float]]:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return None, None
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def per_task_rows(results: Mapping[str, Sequence[float]],
                  published: Optional[Mapping[str, Mapping[str, Optional[float]]]] = None,
                  methods: Sequence[str] = ()) -> List[Dict[str, object]]:
    """Rows ``{"task", "mean", "std", "seeds", <method>...}`` for a table, plus a final ``"mean"`` row.

    ``results`` maps a task to our final scores, one per seed; ``std`` is the sample standard deviation
    over seeds (0 for one seed). ``published`` (e.g. ``published.DMC_PROPRIO``) supplies the columns
    ``methods`` beside ours (``None`` where it has no number). The final row holds the mean over tasks of
    each numeric column, or ``None`` for a column with a missing task (a mean over a subset of the tasks
    would not be comparable).
    """
    published = published or {}
    rows: List[Dict[str, object]] = []
    for task, values in results.items():
        mean, std = _mean_std(values)
        row: Dict[str, object] = {"task": task, "mean": mean, "std": std, "seeds": len(values)}
        for m in methods:
            row[m] = published.get(task, {}).get(m)
        rows.append(row)
    final: Dict[str, object] = {"task": "mean", "std": None, "seeds": None}
    for col in ["mean", *methods]:
        col_vals = [r[col] for r in rows]
        final[col] = float(np.mean(col_vals)) if rows and all(v is not None for v in col_vals) else None
    rows.append(final)
    return rows


def _fmt(value: object, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str], digits: int = 1) -> str:
    """A Markdown table of ``rows`` (dicts) with ``columns`` as header; floats with ``digits`` decimals,
    missing or ``None`` cells as "–"."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Mapping[str, object]], columns: Sequence[str], path: str) -> str:
    """Write ``rows`` with the header ``columns`` to the CSV file ``path`` (``None`` as an empty cell);
    returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return path


def write_markdown(rows: Sequence[Mapping[str, object]], columns: Sequence[str], path: str,
                   title: Optional[str] = None) -> str:
    """Write :func:`markdown_table` of ``rows`` (under an optional ``## title``) to ``path``; returns it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        if title:
            f.write(f"## {title}\n\n")
        f.write(markdown_table(rows, columns))
    return path


def read_curves(run_dir: str, key: str = "eval_return_mean") -> Curve:
    """The learning curve ``[(env_steps, return), ...]`` of an ezrobot run directory, read from its
    ``metrics.jsonl`` (one JSON object per line); lines without ``env_steps`` or ``key`` and blank lines
    are skipped. ``run_dir`` may also be the path of the ``metrics.jsonl`` file itself."""
    path = run_dir if os.path.isfile(run_dir) else os.path.join(run_dir, "metrics.jsonl")
    curve: Curve = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            if rec.get("env_steps") is None or rec.get(key) is None:
                continue
            curve.append((float(rec["env_steps"]), float(rec[key])))
    curve.sort(key=lambda p: p[0])
    return curve


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_curve(per_seed: Mapping[object, Curve]) -> Curve:
    """Mean over seeds at each env-step value reached by every seed (the common x grid)."""
    maps = [dict(c) for c in per_seed.values() if c]
    if not maps:
        return []
    common = sorted(set.intersection(*(set(m) for m in maps)))
    return [(x, float(np.mean([m[x] for m in maps]))) for x in common]


def plot_curves(curves: Mapping[str, Mapping[object, Curve]], path: str, title: Optional[str] = None) -> str:
    """One subplot per task, one thin line per seed and a thick line for their mean (over the env-step
    values all seeds share); saved as a PNG at ``path`` (Agg backend). Returns ``path``."""
    plt = _pyplot()
    tasks = list(curves)
    ncols = min(3, max(1, len(tasks)))
    nrows = max(1, math.ceil(len(tasks) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for seed, curve in curves[task].items():
            if curve:
                xs, ys = zip(*curve)
                ax.plot(xs, ys, linewidth=0.9, alpha=0.45, label=f"seed {seed}")
        mean = _mean_curve(curves[task])
        if mean:
            xs, ys = zip(*mean)
            ax.plot(xs, ys, color="black", linewidth=2.2, label="mean")
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_bars(values: Mapping[str, float], path: str, ylabel: str = "human-normalised score",
              title: Optional[str] = None, reference: Optional[float] = 1.0) -> str:
    """A bar per key of ``values`` (e.g. per-game HNS), sorted by value, with an optional horizontal
    ``reference`` line (1.0 = human level); saved as a PNG at ``path``. Returns ``path``."""
    plt = _pyplot()
    items = sorted(values.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.38 * len(items) + 1.5), 4.0))
    ax.bar(range(len(items)), [v for _, v in items], color="tab:blue")
    ax.set_xticks(range(len(items)))
    ax.set_xticklabels([k for k, _ in items], rotation=75, ha="right", fontsize=8)
    if reference is not None:
        ax.axhline(reference, color="tab:red", linestyle="--", linewidth=1)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig, plt, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path
