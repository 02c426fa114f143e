"""``ezrobot bench update``: one row per variant with the halves of the update time, the baseline first."""
import json

import pytest

from ezrobot.bench.update import main
from ezrobot.usage import UsageError

SMALL = ["--experiment", "cartpole", "--updates", "2", "--repeats", "2", "--warmup", "1",
         "train.start_transitions=40", "train.batch_size=16"]


def test_bench_update_json_rows(capsys):
    assert main([*SMALL, "--replay", "60", "--variant", "train.batch_size=8 train.unroll_steps=2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["overrides"] for r in rows] == ["(baseline)", "train.batch_size=8 train.unroll_steps=2"]
    assert rows[0]["speedup"] == 1.0
    for row in rows:
        assert len(row["s_per_update_blocks"]) == 2 and row["experiment"] == "cartpole"
        assert row["replay_transitions"] >= 60 and 0 < row["value_cache_hit_rate"] < 1
        assert 0 < row["make_batch_s"] + row["learner_update_s"] <= row["s_per_update"] * 1.05
        assert row["speedup"] == pytest.approx(rows[0]["s_per_update"] / row["s_per_update"], rel=1e-2)


@pytest.mark.parametrize("flag, value", [("--updates", "0"), ("--repeats", "-1"), ("--warmup", "-2"), ("--replay", "-5")])
def test_bench_update_rejects_bad_counts(flag, value):
    with pytest.raises(UsageError, match=f"{flag} {value}"):
        main(["--experiment", "cartpole", flag, value])
