"""``ezrobot bench atari100k``: end to end on a tiny budget (the table beside the published columns, HNS, the
aggregates and plots, reuse of a finished (game, seed), refusal of a changed one), the table and aggregates
against a hand computation, and bad inputs in one line (exit 2)."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ezrobot.bench import atari
from ezrobot.bench.published import ATARI100K, ATARI_COLUMNS
from ezrobot.cli import main

# 100 agent steps, 30-step evaluation episodes, a few updates.
TINY = ["train.start_transitions=40", "train.batch_size=8", "search.num_simulations=4", "eval.episodes=1",
        "eval.interval=100000", "env.max_episode_steps=30", "replay.capacity=500", "train.num_envs=2", "threads=1"]
PNG = b"\x89PNG\r\n\x1a\n"


def _bench(out, *extra, tiny=TINY):
    return main(["bench", "atari100k", "--games", "Breakout", "--seeds", "0", "--env-steps", "400",
                 "--out", str(out), *extra, *tiny])


def _hns(game, score):
    ref = ATARI100K[game]
    return (score - ref["random"]) / (ref["human"] - ref["random"])


def test_bench_atari_table_aggregates_plots_and_reuse(tmp_path, capsys):
    assert _bench(tmp_path) == 0
    out = capsys.readouterr().out
    assert "| Breakout |" in out and "above human: " in out
    for name in ("results.csv", "results.md", "aggregates.json", "hns.png", "curves.png"):
        assert (tmp_path / name).exists(), name
    for name in ("hns.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["game"] == "Breakout" and rows[0]["seeds"] == "1"
    summary_path = tmp_path / "Breakout-s0" / "summary.json"
    summary = json.loads(summary_path.read_text())
    assert float(rows[0]["mean"]) == pytest.approx(summary["final_eval_return_mean"])
    assert float(rows[0]["hns"]) == pytest.approx(_hns("Breakout", float(rows[0]["mean"])))
    for col in ATARI_COLUMNS:
        assert float(rows[0][col]) == ATARI100K["Breakout"][col], col
    assert "| Breakout | 1 |" in (tmp_path / "results.md").read_text()
    agg = json.loads((tmp_path / "aggregates.json").read_text())
    assert agg["games"] == ["Breakout"] and agg["runs"] == 1
    assert agg["above_human"] == int(float(rows[0]["hns"]) >= 1.0)
    assert agg["mean"]["point"] == pytest.approx(float(rows[0]["hns"]))

    stamp, content = os.stat(summary_path).st_mtime_ns, summary_path.read_text()
    assert _bench(tmp_path) == 0  # finished: reused, not retrained
    assert os.stat(summary_path).st_mtime_ns == stamp and summary_path.read_text() == content
    captured = capsys.readouterr()
    assert "ezrobot: run_dir=" not in captured.err and '"train_steps"' not in captured.out

    changed = [a for a in TINY if not a.startswith("search.num_simulations=")] + ["search.num_simulations=2"]
    assert _bench(tmp_path, tiny=changed) == 2  # another config on the same --out: one line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "search.num_simulations" in err[0]
    assert os.stat(summary_path).st_mtime_ns == stamp


def test_tabulate_against_hand_computation():
    finals = {"Breakout": [20.0, 31.0, 50.0], "Boxing": [10.0, 20.0, 30.0], "Pong": [-20.7, -3.05, 14.6],
              "Alien": [500.0, 900.0, 1300.0]}
    rows, agg = atari.tabulate(finals, reps=300)
    games = list(finals)
    x = np.array([[_hns(g, finals[g][i]) for g in games] for i in range(3)])  # [runs, games]
    per_game = x.mean(axis=0)
    assert [r["game"] for r in rows] == games
    for row, g, h in zip(rows, games, per_game):
        assert row["seeds"] == 3
        assert row["mean"] == pytest.approx(np.mean(finals[g]))
        assert row["std"] == pytest.approx(np.std(finals[g], ddof=1))
        assert row["hns"] == pytest.approx(h)
        assert all(row[c] == ATARI100K[g][c] for c in ATARI_COLUMNS)
    flat = np.sort(x.ravel())  # 12 scores: the IQM drops the 3 lowest and the 3 highest
    assert agg["iqm"]["point"] == pytest.approx(flat[3:9].mean())
    assert agg["mean"]["point"] == pytest.approx(per_game.mean())
    assert agg["median"]["point"] == pytest.approx(np.median(per_game))
    assert agg["optimality_gap"]["point"] == pytest.approx(1.0 - np.minimum(x, 1.0).mean())
    for name in ("mean", "median", "iqm", "optimality_gap"):
        assert agg[name]["low"] <= agg[name]["point"] <= agg[name]["high"], name
    assert agg["above_human"] == 2 == int((per_game >= 1.0).sum())  # Breakout and Boxing
    assert agg["runs"] == 3 and agg["games"] == games


def test_games_all_is_the_published_set():
    assert atari._games("all") == list(ATARI100K) and len(ATARI100K) == 26
    assert atari._games("Pong,Breakout,Pong") == ["Pong", "Breakout"]


@pytest.mark.parametrize("args, named", [
    (["--games", ",", "--seeds", "0"], "--games"),
    (["--games", "Pong", "--seeds", "zero"], "'zero'"),
    (["--games", "Pong", "--seeds", ","], "--seeds"),
    (["--games", "Pong", "--env-steps", "0"], "--env-steps 0"),
])
def test_bad_arguments_are_one_line_exit_2(args, named, tmp_path, capsys):
    assert main(["bench", "atari100k", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ezrobot: error: ") and named in err[0], err
    assert not os.listdir(tmp_path)  # refused before any training


def test_unknown_game_is_one_line_exit_2(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "ezrobot", "bench", "atari100k", "--games", "Breakout,Pongg",
                           "--out", str(tmp_path / "out")], env=env, cwd=tmp_path, text=True, capture_output=True,
                          timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("ezrobot: error: "), proc.stderr[-3000:]
    assert "'Pongg'" in lines[0] and "did you mean Pong?" in lines[0] and "Breakout" in lines[0]
    assert not (tmp_path / "out").exists()
