"""``ezrobot bench adapt``: for each source -> target pair and seed, the target task trained from scratch and
fine-tuned from a source run (``init_from``), with the same seed and env-step budget.

A pair is ``SOURCE:TARGET``; each side is a task id with optional task parameters in brackets, separated by
``;`` (``jaco_reach:jaco_reach[obstacle=true]``, ``jaco_reach:jaco_reach[mass_scale=2.0]``,
``dmc/cartpole-balance:dmc/cartpole-swingup``); ``--pairs acceptance`` names those three. Every run is an
ordinary run directory under ``--out`` (``<source>-s<seed>``, ``<target>-scratch-s<seed>``,
``<target>-from-<source>[-<adapt overrides>]-s<seed>``), so an interrupted benchmark resumes, a finished run is
reused when its saved config is the one this call would train, and calls with other ``--adapt`` overrides
share the source and from-scratch runs. Written under ``--out``: ``results.md`` / ``results.json``
(per pair and seed: both final returns, the env steps each run needed to reach 80% of the from-scratch final
return, and their ratio) and ``curves.png`` (evaluation return against env steps, one panel per pair)."""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
from typing import Dict, List, Optional, Tuple

import yaml

from ezrobot.adapt.source import finetune_overrides
from ezrobot.bench import report
from ezrobot.config import ConfigError
from ezrobot.hydra_config import load_config
from ezrobot.runs import check_same_run, train
from ezrobot.usage import UsageError

ACCEPTANCE = ("jaco_reach:jaco_reach[obstacle=true],dmc/cartpole-balance:dmc/cartpole-swingup,"
              "jaco_reach:jaco_reach[mass_scale=2.0]")
"""The pairs of issue 19's acceptance (``--pairs acceptance``)."""
THRESHOLD = 0.8
"""Fraction of the from-scratch final return that counts as reached."""
COLUMNS = ("pair", "seed", "scratch_final", "finetune_final", "scratch_steps_to_80", "finetune_steps_to_80",
           "steps_ratio")

Side = Tuple[str, Dict[str, str]]


def parse_side(text: str) -> Side:
    """``task[k=v;k=v]`` -> ``(task, {k: v})``.

    Raises:
        UsageError: naming the text and the allowed form.
    """
    match = re.fullmatch(r"([^\[\]]+)(?:\[([^\[\]]*)\])?", text.strip())
    params = [p for p in (match.group(2) or "").split(";") if p.strip()] if match else []
    if not match or any("=" not in p for p in params):
        raise UsageError(f"--pairs side {text!r} is not allowed; use TASK or TASK[key=value;key=value]")
    return match.group(1).strip(), dict(p.strip().split("=", 1) for p in params)


def parse_pairs(text: str) -> List[Tuple[Side, Side]]:
    """``SRC:TGT,SRC:TGT`` (or ``acceptance``) -> ``[(source side, target side), ...]``."""
    text = ACCEPTANCE if text == "acceptance" else text
    pairs = []
    for item in (p for p in re.split(r",(?![^\[]*\])", text) if p.strip()):
        halves = re.split(r":(?![^\[]*\])", item)
        if len(halves) != 2:
            raise UsageError(f"--pairs item {item!r} is not allowed; use SOURCE:TARGET (e.g. "
                             "jaco_reach:jaco_reach[obstacle=true]) or --pairs acceptance")
        pairs.append((parse_side(halves[0]), parse_side(halves[1])))
    if not pairs:
        raise UsageError("--pairs must name at least one SOURCE:TARGET pair")
    return pairs


def side_name(side: Side) -> str:
    """A filesystem-safe name: ``jaco_reach-obstacle_true``, ``dmc_cartpole-swingup``."""
    task, params = side
    text = "-".join([task] + [f"{k}_{v}" for k, v in sorted(params.items())])
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def side_overrides(side: Side) -> List[str]:
    """``task=...`` and one ``+env.gym_kwargs.<k>=<v>`` per task parameter."""
    task, params = side
    return [f"task={task}"] + [f"+env.gym_kwargs.{k}={v}" for k, v in sorted(params.items())]


def adapt_tag(adapt: str) -> str:
    """The fine-tuned runs' name suffix for ``--adapt`` overrides (``-reuse_replay_true``; empty without)."""
    tag = re.sub(r"[^A-Za-z0-9.]+", "_", adapt.replace("adapt.", "")).strip("_")
    return f"-{tag[:80]}" if tag else ""


def _preset(task: str, experiment: str) -> str:
    return experiment or ("dmc_proprio" if task.startswith("dmc/") else "robot_proprio")


def _run(overrides: List[str], env_steps: int) -> Dict:
    """Train (or resume) one run, or reuse its finished summary when the saved config matches."""
    cfg = load_config(overrides)
    summary_path = os.path.join(cfg.run_dir, "summary.json")
    if os.path.exists(summary_path):
        check_same_run(cfg, cfg.run_dir)
        with open(os.path.join(cfg.run_dir, "config.yaml")) as f:
            saved = yaml.safe_load(f).get("env_steps")
        if saved != env_steps:
            raise ConfigError(f"run_dir {cfg.run_dir!r} holds a finished run with env_steps={saved} (now "
                              f"{env_steps}); choose another --out to run this budget")
        with open(summary_path) as f:
            return json.load(f)
    summary = train(cfg)
    print(json.dumps(summary))
    return summary


def run_pair(pair: Tuple[Side, Side], seed: int, args: argparse.Namespace) -> Dict[str, str]:
    """The source, from-scratch and fine-tuned runs of one pair and seed; returns their run directories."""
    source, target = pair
    common = [f"seed={seed}", "log.progress=false", *args.overrides]
    dirs = {"source": os.path.join(args.out, f"{side_name(source)}-s{seed}"),
            "scratch": os.path.join(args.out, f"{side_name(target)}-scratch-s{seed}"),
            "finetune": os.path.join(args.out, f"{side_name(target)}-from-{side_name(source)}{adapt_tag(args.adapt)}"
                                               f"-s{seed}")}
    source_steps = args.source_env_steps or args.env_steps
    _run([f"experiment={_preset(source[0], args.experiment)}", *side_overrides(source), *common,
          f"env_steps={source_steps}", f"run_dir={dirs['source']}"], source_steps)
    budget = [f"env_steps={args.env_steps}"]
    _run([f"experiment={_preset(target[0], args.experiment)}", *side_overrides(target), *common, *budget,
          f"run_dir={dirs['scratch']}"], args.env_steps)
    _run(finetune_overrides(dirs["source"], [*side_overrides(target), *common, *budget,
                                             f"run_dir={dirs['finetune']}", *shlex.split(args.adapt)]),
         args.env_steps)
    return dirs


def steps_to_reach(curve: List[Tuple[int, float]], threshold: float) -> Optional[int]:
    """The first env-step count at which ``curve`` reaches ``threshold`` (None: never)."""
    return next((int(x) for x, y in curve if y >= threshold), None)


def compare(name: str, seed: int, scratch: list, finetune: list) -> Dict:
    """One table row: final returns, env steps to 80% of the from-scratch final return, their ratio."""
    final = scratch[-1][1] if scratch else None
    row = {"pair": name, "seed": seed, "scratch_final": final,
           "finetune_final": finetune[-1][1] if finetune else None}
    if final is not None:
        row["scratch_steps_to_80"] = steps_to_reach(scratch, THRESHOLD * final)
        row["finetune_steps_to_80"] = steps_to_reach(finetune, THRESHOLD * final)
        if row["scratch_steps_to_80"] and row["finetune_steps_to_80"] is not None:
            row["steps_ratio"] = round(row["finetune_steps_to_80"] / row["scratch_steps_to_80"], 3)
    return row


def plot(curves: Dict[str, Dict[str, Dict[int, list]]], path: str, title: str) -> str:
    """One panel per pair: from-scratch (blue) and fine-tuned (orange) curves, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.4 * len(curves), 3.3), squeeze=False)
    for ax, (pair, runs) in zip(axes.flat, curves.items()):
        for kind, color in (("scratch", "tab:blue"), ("finetune", "tab:orange")):
            for seed, curve in runs[kind].items():
                if curve:
                    xs, ys = zip(*curve)
                    ax.plot(xs, ys, color=color, alpha=0.8, label=f"{kind} s{seed}")
        ax.set_title(pair, fontsize=8)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _parse(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ezrobot bench adapt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", default="acceptance", help="SRC:TGT[,SRC:TGT...] or acceptance")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--env-steps", type=int, default=50_000, help="budget of the target runs in env steps")
    p.add_argument("--source-env-steps", type=int, default=0, help="budget of the source runs (0: --env-steps)")
    p.add_argument("--experiment", default="", help="preset of every run (default: dmc_proprio for dmc/ "
                                                    "tasks, robot_proprio for the others)")
    p.add_argument("--adapt", default="", help='overrides of the fine-tuned runs only, e.g. "adapt.reuse_replay=true"')
    p.add_argument("--out", default="runs/bench_adapt", help="folder for the runs and the tables")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("overrides", nargs="*", help="config overrides key=value of every run")
    return p.parse_args(argv)


def main(argv: List[str]) -> int:
    """Run every pair and seed, then write the table, its JSON and the curves under ``--out``."""
    args = _parse(argv)
    pairs = parse_pairs(args.pairs)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        raise UsageError(f"--seeds {args.seeds!r} must be comma-separated integers") from None
    if not seeds:
        raise UsageError("--seeds must name at least one seed")
    if args.env_steps <= 0 or args.source_env_steps < 0:
        raise UsageError(f"--env-steps {args.env_steps} must be > 0 and --source-env-steps "
                         f"{args.source_env_steps} >= 0 (0: --env-steps)")
    rows, curves = [], {}
    for pair in pairs:
        name = f"{side_name(pair[0])} -> {side_name(pair[1])}"
        curves[name] = {"scratch": {}, "finetune": {}}
        for seed in seeds:
            dirs = run_pair(pair, seed, args)
            for kind in ("scratch", "finetune"):
                curves[name][kind][seed] = report.read_curves(dirs[kind])
            rows.append(compare(name, seed, curves[name]["scratch"][seed], curves[name]["finetune"][seed]))
    title = (f"{args.env_steps:,} env steps per target run · seeds {','.join(map(str, seeds))} · fine-tuned with "
             f"{args.adapt or 'the adapt defaults'}")
    os.makedirs(args.out, exist_ok=True)
    report.write_markdown(rows, COLUMNS, os.path.join(args.out, "results.md"), title=title)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"title": title, "threshold": THRESHOLD, "rows": rows}, f, indent=2)
    plot(curves, os.path.join(args.out, "curves.png"), title)
    print(json.dumps({"rows": rows}) if args.json else report.markdown_table(rows, COLUMNS))
    return 0
