"""``ezrobot bench memory``: RSS is sampled after the replay is full and its growth reported (a few seconds on
CartPole with a tiny replay; the 30-minute measurement is in docs/RESULTS.md)."""
import json
import sys

import pytest

from ezrobot.bench.memory import main, rss_bytes, summarize
from ezrobot.evaluate import release_freed_memory
from ezrobot.factory import build_training
from ezrobot.hydra_config import load_config
from ezrobot.logger import MetricsLogger
from ezrobot.trainer import Trainer
from ezrobot.usage import UsageError


def test_bench_memory_reports_growth_after_the_replay_is_full(tmp_path, capsys):
    out = tmp_path / "memory.json"
    assert main(["--experiment", "cartpole", "--capacity", "150", "--minutes", "0.05", "--interval", "0.5",
                 "--out", str(out), "train.start_transitions=50", "train.batch_size=16",
                 "search.num_simulations=4", "eval.episodes=1", "threads=1"]) == 0
    row = json.loads(out.read_text())
    assert row["capacity"] == 150 and row["replay_mb"] > 0 and row["env_steps"] >= 150
    assert len(row["samples"]) >= 3 and row["samples"][0]["s_after_fill"] == 0
    assert row["samples"][-1]["s_after_fill"] >= 3.0
    assert row["rss_at_fill_mb"] == row["samples"][0]["rss_mb"] > 0
    assert row["rss_max_mb"] == max(s["rss_mb"] for s in row["samples"])
    assert row["growth_pct"] == pytest.approx(100 * (row["rss_last_mb"] / row["rss_at_fill_mb"] - 1), abs=0.01)
    assert isinstance(row["flat"], bool)
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| experiment |") and "max_growth_pct" in table[0] and "| cartpole |" in table[2]


def test_growth_summary_and_rss():
    samples = [{"s_after_fill": 0, "rss_mb": 100.0}, {"s_after_fill": 1, "rss_mb": 108.0},
               {"s_after_fill": 2, "rss_mb": 104.0}]
    assert summarize(samples, 5.0) == {"rss_at_fill_mb": 100.0, "rss_max_mb": 108.0, "rss_last_mb": 104.0,
                                       "growth_pct": 4.0, "max_growth_pct": 8.0, "flat": False}
    assert rss_bytes() > 10 * 2 ** 20
    release_freed_memory()  # gc + glibc malloc_trim after each evaluation; a no-op without glibc


@pytest.mark.parametrize("flag", ["--capacity", "--minutes", "--interval"])
def test_bench_memory_rejects_non_positive_values(flag):
    with pytest.raises(UsageError, match=f"{flag} 0"):
        main([flag, "0"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_a_checkpoint_hands_its_temporary_memory_back(tmp_path):
    """Writing a checkpoint serialises the state and pickles the self-play environments (~25 MB for two
    dm_control cartpoles); without trimming the heap afterwards the first checkpoint kept ~50 MB (~145 MB
    in a longer run), which broke the 30-minute flatness of ``ezrobot bench memory``."""
    cfg = load_config(["experiment=dmc_proprio", "task=dmc/cartpole-swingup", "replay.capacity=2000",
                       "log.progress=false", f"run_dir={tmp_path}/run"])
    parts, training = build_training(cfg)
    trainer = Trainer(parts, training, MetricsLogger(cfg.run_dir))
    trainer.save()
    growth = []
    for _ in range(2):
        before = rss_bytes()
        trainer.save()
        growth.append((rss_bytes() - before) / 2 ** 20)
    assert max(growth) < 15.0, growth
