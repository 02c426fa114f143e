"""``ezrobot bench dmc`` end to end on a tiny budget: the table, the aggregates, the curves, reuse of a
finished (task, seed) and the refusal of a stale one."""
import json
import os

from ezrobot.cli import main

TINY = ["train.start_transitions=40", "train.batch_size=16", "search.num_simulations=4",
        "eval.episodes=1", "eval.interval=200", "env.max_episode_steps=50", "replay.capacity=2000"]


def _bench(out, env_steps=200):
    return main(["bench", "dmc", "--tasks", "cartpole-balance", "--obs", "proprio", "--env-steps", str(env_steps),
                 "--seeds", "0", "--out", str(out), *TINY])


def test_bench_dmc_table_aggregates_curves_and_reuse(tmp_path, capsys):
    assert _bench(tmp_path) == 0
    table = (tmp_path / "results.md").read_text()
    assert "| cartpole-balance |" in table and "EZ-V2" in table and "TD-MPC2" in table
    assert "950" in table  # EZ-V2's published cartpole-balance score stands beside ours
    agg = json.loads((tmp_path / "aggregates.json").read_text())
    for name in ("mean", "median", "iqm", "optimality_gap"):
        assert agg[name]["low"] <= agg[name]["point"] <= agg[name]["high"]
    with open(tmp_path / "curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    summary = tmp_path / "cartpole-balance-s0" / "summary.json"
    stamp = os.stat(summary).st_mtime_ns
    capsys.readouterr()
    assert _bench(tmp_path) == 0  # finished: reused, not retrained
    assert os.stat(summary).st_mtime_ns == stamp
    assert "ezrobot: run_dir=" not in capsys.readouterr().err
    assert _bench(tmp_path, env_steps=100) == 2  # a finished run of another budget is refused in one line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "env_steps" in err[0]
