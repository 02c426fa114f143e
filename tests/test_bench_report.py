"""ezrobot.bench.report and ezrobot.bench.published: aggregates against hand computations, CI sanity and
reproducibility, HNS, the published tables, Markdown/CSV tables, PNG plots and read_curves."""
import csv
import inspect
import json

import numpy as np
import pytest

from ezrobot.bench import published, report
from ezrobot.bench.published import ATARI100K, DMC_PIXELS, DMC_PROPRIO, hns


def _squares_matrix():
    """A 4x8 matrix holding k**2 for k = 1..32 in a fixed shuffled order."""
    order = np.random.RandomState(3).permutation(32) + 1
    return (order.astype(np.float64) ** 2).reshape(4, 8)


def test_aggregate_matches_hand_computation():
    x = _squares_matrix()
    agg = report.aggregate(x, gap_threshold=500.0, reps=500, seed=0)
    # IQM: the 32 sorted scores are k**2, k = 1..32; the middle 50% are k = 9..24:
    # (sum_{k<=24} k^2 - sum_{k<=8} k^2) / 16 = (4900 - 204) / 16.
    assert agg["iqm"]["point"] == pytest.approx(4696 / 16)
    assert agg["mean"]["point"] == pytest.approx(np.mean(x))
    assert agg["median"]["point"] == pytest.approx(np.median(x.mean(axis=0)))
    assert agg["optimality_gap"]["point"] == pytest.approx(500.0 - np.minimum(x, 500.0).mean())


def test_optimality_gap_by_hand():
    x = np.array([[0.5, 1.5], [1.0, 0.0]])
    assert report.aggregate(x, reps=200)["optimality_gap"]["point"] == pytest.approx(0.375)  # 1 - 2.5/4
    assert report.aggregate(x, gap_threshold=0.5, reps=200)["optimality_gap"]["point"] == pytest.approx(0.125)


def test_intervals_contain_point_and_are_reproducible():
    x = _squares_matrix() / 100.0
    a = report.aggregate(x, reps=1000, seed=7)
    assert set(a) == set(report.METRICS)
    for name, est in a.items():
        assert est["low"] <= est["point"] <= est["high"], name
        assert est["low"] < est["high"], name
    assert report.aggregate(x, reps=1000, seed=7) == a
    b = report.aggregate(x, reps=1000, seed=8)
    assert any(b[m]["low"] != a[m]["low"] or b[m]["high"] != a[m]["high"] for m in report.METRICS)


def test_single_run():
    x = np.array([[0.2, 0.9, 1.4, 0.4, 2.0, 0.1]])
    agg = report.aggregate(x, reps=500)
    assert agg["mean"]["point"] == pytest.approx(x.mean())
    assert agg["median"]["point"] == pytest.approx(np.median(x))
    for est in agg.values():
        assert est["low"] <= est["point"] <= est["high"]
    assert agg["mean"]["low"] < agg["mean"]["high"]  # tasks are resampled: a real interval
    assert report.aggregate(x[0], reps=500) == agg  # a 1-D vector is one run


def test_hns_by_hand():
    assert hns("Pong", 20.1) == pytest.approx((20.1 + 20.7) / (14.6 + 20.7))
    assert hns("Breakout", 1.7) == pytest.approx(0.0)
    assert hns("Breakout", 30.5) == pytest.approx(1.0)
    assert hns("Alien", 808.5) == pytest.approx((808.5 - 227.8) / (7127.7 - 227.8))


def test_published_atari_reproduces_paper_aggregates():
    assert len(ATARI100K) == 26
    assert all(set(row) == set(published.ATARI_COLUMNS) for row in ATARI100K.values())
    ez = np.array(list(published.published_hns("EfficientZero").values()))
    assert round(float(ez.mean()), 3) == 1.943 and round(float(np.median(ez)), 3) == 1.090  # NeurIPS paper
    spr = np.array(list(published.published_hns("SPR").values()))
    assert round(float(spr.mean()), 3) == pytest.approx(0.704, abs=0.0015)  # SPR paper: 0.704 / 0.415
    assert round(float(np.median(spr)), 3) == 0.415


def test_published_dmc_tables():
    assert list(DMC_PROPRIO) == list(published.PROPRIO_TASKS)
    for row in DMC_PROPRIO.values():
        assert set(row) == {"EZ-V2", "TD-MPC2", "DreamerV3", "SAC"}
    assert [DMC_PROPRIO[t]["EZ-V2"] for t in published.PROPRIO_TASKS] == [950, 805, 595, 960, 835, 940, 940]
    assert DMC_PIXELS["cartpole-swingup"]["CURL"] == 582 and DMC_PIXELS["ball_in_cup-catch"]["DrQ"] == 913
    assert round(np.mean([r["CURL"] for r in DMC_PIXELS.values()])) == 560  # CURL Table 1 mean
    assert round(np.mean([r["DrQ"] for r in DMC_PIXELS.values()])) == 688
    assert all(r["EZ-V2"] is None for r in DMC_PIXELS.values())  # EZ-V2 vision is at 200k, kept apart
    assert set(published.DMC_PROPRIO_200K_ENV) == set(published.PROPRIO_TASKS)
    for table in (DMC_PROPRIO, DMC_PIXELS, ATARI100K):
        for row in table.values():
            for method in row:
                assert method in published.SOURCES or method in ("random", "human", "EZ-V2@200k")
    source = inspect.getsource(published)
    assert "/work/" + "shared" not in source and ".." + "/shared" not in source


def _rows():
    ours = {"cheetah-run": [500.0, 600.0, 700.0], "finger-spin": [800.0], "walker-walk": [900.0, 920.0]}
    return report.per_task_rows(ours, DMC_PROPRIO, ["EZ-V2", "TD-MPC2"])


def test_per_task_rows_and_markdown_table():
    rows = _rows()
    assert [r["task"] for r in rows] == ["cheetah-run", "finger-spin", "walker-walk", "mean"]
    assert rows[0]["mean"] == pytest.approx(600.0) and rows[0]["std"] == pytest.approx(100.0)
    assert rows[0]["seeds"] == 3 and rows[1]["std"] == 0.0
    assert rows[-1]["mean"] == pytest.approx((600.0 + 800.0 + 910.0) / 3)
    assert rows[-1]["EZ-V2"] == pytest.approx((595 + 835 + 940) / 3)
    assert rows[-1]["TD-MPC2"] is None
    table = report.markdown_table(rows, ["task", "mean", "std", "seeds", "EZ-V2", "TD-MPC2"])
    lines = table.strip().splitlines()
    assert lines[0] == "| task | mean | std | seeds | EZ-V2 | TD-MPC2 |"
    assert len(lines) == 2 + 4
    assert lines[2] == "| cheetah-run | 600.0 | 100.0 | 3 | 595.0 | – |"
    assert "| finger-spin | 800.0 | 0.0 | 1 | 835.0 | – |" in lines
    assert lines[-1].startswith("| mean | 770.0 | – | – | 790.0 |")


def test_write_csv_and_markdown(tmp_path):
    cols = ["task", "mean", "std", "seeds", "EZ-V2", "TD-MPC2"]
    path = report.write_csv(_rows(), cols, str(tmp_path / "out" / "table.csv"))
    with open(path) as f:
        got = list(csv.reader(f))
    assert got[0] == cols and got[1][0] == "cheetah-run" and float(got[1][4]) == 595.0
    assert got[1][5] == "" and got[-1][0] == "mean"
    md = report.write_markdown(_rows(), cols, str(tmp_path / "table.md"), title="DMC proprio")
    assert open(md).read().startswith("## DMC proprio\n\n| task |")


def _assert_png(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1024


def test_plots_are_png(tmp_path):
    curves = {
        "cheetah-run": {0: [(0, 10.0), (5000, 100.0), (10000, 250.0)], 1: [(0, 5.0), (5000, 140.0), (10000, 300.0)]},
        "finger-spin": {0: [(0, 0.0), (5000, 400.0)]},
    }
    _assert_png(report.plot_curves(curves, str(tmp_path / "curves.png"), title="test"))
    hns_values = {g: hns(g, row["EZ-V2"]) for g, row in ATARI100K.items()}
    _assert_png(report.plot_bars(hns_values, str(tmp_path / "bars.png"), ylabel="HNS"))


def test_mean_curve_uses_shared_steps():
    mean = report._mean_curve({0: [(0, 1.0), (10, 3.0), (20, 5.0)], 1: [(0, 3.0), (10, 5.0)]})
    assert mean == [(0, 2.0), (10, 4.0)]


def test_read_curves(tmp_path):
    recs = [{"env_steps": 2000, "eval_return_mean": 12.5, "loss": 0.3},
            {"env_steps": 1000, "eval_return_mean": 3.0},
            {"env_steps": 3000, "loss": 0.1}]
    text = "\n".join(json.dumps(r) for r in recs) + "\n\n"
    (tmp_path / "metrics.jsonl").write_text(text)
    assert report.read_curves(str(tmp_path)) == [(1000.0, 3.0), (2000.0, 12.5)]
    assert report.read_curves(str(tmp_path / "metrics.jsonl")) == [(1000.0, 3.0), (2000.0, 12.5)]


def test_aggregate_leaves_global_random_state():
    np.random.seed(11)
    expected = np.random.rand(3)
    np.random.seed(11)
    report.aggregate(np.array([[0.1, 0.5], [0.3, 0.9]]), reps=100, seed=5)
    assert np.array_equal(np.random.rand(3), expected)
