"""Resuming a run directory: counters and metrics continue after a longer re-run, a fresh Trainer restores
every piece of state exactly, and a run directory holding a different configuration is refused."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from ezrobot import cli
from ezrobot.commands.train import main as train_command
from ezrobot.factory import build_training
from ezrobot.logger import MetricsLogger
from ezrobot.hydra_config import load_config
from ezrobot.trainer import Trainer

TINY = ["experiment=cartpole", "train.start_transitions=100", "train.batch_size=16", "search.num_simulations=4",
        "eval.episodes=2", "eval.interval=200", "log.progress=false", "replay.capacity=2000", "threads=1",
        "train.replay_ratio=0.5"]


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """``threads=1`` sets torch's thread count for the whole process; put it back afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A finished 300-env-step CartPole run (trained once, copied by the tests that change it)."""
    run_dir = tmp_path_factory.mktemp("resume") / "run"
    assert train_command([*TINY, "env_steps=300", f"run_dir={run_dir}"]) == 0
    return run_dir


def _rows(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_first_run_is_complete(first_run):
    rows = _rows(first_run)
    assert [r["env_steps"] for r in rows] == [200, 300]
    with open(first_run / "checkpoints" / "latest") as f:
        assert f.read().strip() == "step_0000000300"


@pytest.mark.parametrize("override", ["seed=1", "train.batch_size=32", "search.num_simulations=5",
                                      "experiment=cartpole optim.lr=0.01"])
def test_a_different_config_is_refused(first_run, capsys, override):
    with open(first_run / "config.yaml") as f:
        saved = f.read()
    rows = _rows(first_run)
    code = cli.main(["train", *TINY, "env_steps=300", f"run_dir={first_run}", *override.split()])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ezrobot: error: "), err
    key = override.split()[-1].split("=")[0]
    assert key in lines[0] and str(first_run) in lines[0]
    with open(first_run / "config.yaml") as f:
        assert f.read() == saved
    assert _rows(first_run) == rows


def test_longer_rerun_continues_the_counters(first_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(first_run, run_dir)
    before = _rows(run_dir)
    assert train_command([*TINY, "env_steps=500", f"run_dir={run_dir}"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = _rows(run_dir)
    steps = [r["env_steps"] for r in rows]
    assert steps == sorted(set(steps)), f"env_steps not strictly increasing: {steps}"
    assert steps[:len(before)] == [r["env_steps"] for r in before] and steps[-1] == 500
    assert len(steps) > len(before)
    updates = [r["train_steps"] for r in rows]
    assert updates == sorted(set(updates)), f"train_steps not strictly increasing: {updates}"
    assert rows[len(before)]["wall_time_s"] > before[-1]["wall_time_s"]
    assert summary["env_steps"] == 500 and summary["train_steps"] == (500 - 100) // 2
    with open(run_dir / "checkpoints" / "latest") as f:
        assert f.read().strip() == "step_0000000500"


def test_rerun_of_a_finished_run_changes_nothing(first_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(first_run, run_dir)
    before = _rows(run_dir)
    assert train_command([*TINY, "env_steps=300", f"run_dir={run_dir}"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert _rows(run_dir) == before
    assert summary["env_steps"] == 300 and summary["train_steps"] == 100


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 3)


def test_a_damaged_newest_checkpoint_is_reported_and_the_intact_one_used(first_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(first_run, run_dir)
    newest = run_dir / "checkpoints" / "step_0000000300"
    _truncate(newest / "state.pt")
    assert cli.main(["eval", f"run_dir={run_dir}", "episodes=1"]) == 0
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "warning" in err and str(newest) in err and "step_0000000200" in err, err
    assert json.loads(out)["checkpoint"].endswith("step_0000000200")
    # Resume does the same: it continues from 200, so the 300 row is written once again.
    assert cli.main(["train", *TINY, "env_steps=300", f"run_dir={run_dir}"]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(newest) in warnings[0], err
    assert [r["env_steps"] for r in _rows(run_dir)] == [200, 300]
    # With every checkpoint damaged, eval stops with one error line.
    for step in ("0000000200", "0000000300"):
        _truncate(run_dir / "checkpoints" / f"step_{step}" / "state.pt")
    assert cli.main(["eval", f"run_dir={run_dir}"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ezrobot: error: ") and "no intact checkpoint" in lines[0]


def _trainer(run_dir):
    cfg = load_config([*TINY, "env_steps=200", "eval.interval=1000", f"run_dir={run_dir}"])
    parts, training = build_training(cfg)
    os.makedirs(cfg.run_dir, exist_ok=True)
    return Trainer(parts, training, MetricsLogger(cfg.run_dir))


def _assert_same_tensors(a, b, what):
    assert a.keys() == b.keys(), what
    for key in a:
        assert torch.equal(a[key], b[key]), f"{what}: {key}"


def test_save_and_try_resume_restore_everything(tmp_path):
    run_dir = tmp_path / "run"
    trainer = _trainer(run_dir)
    trainer.run()  # trains 200 env steps (100 after the random warm-up) and saves
    path = trainer.save()
    assert path.endswith("step_0000000200")
    p, t = trainer.p, trainer.t
    saved_counters = dict(trainer.c.__dict__)
    saved_len, saved_insertions = len(t.replay), t.replay.num_insertions
    saved_obs = t.replay.state_dict()["obs"][:saved_len].copy()
    saved_rng = trainer.rng.bit_generator.state
    assert saved_counters["updates"] == 50 and saved_counters["env_steps"] == 200

    fresh = _trainer(run_dir)
    assert fresh.c.updates == 0 and len(fresh.t.replay) == fresh.cfg.train.num_envs
    assert fresh.try_resume()
    assert dict(fresh.c.__dict__) == saved_counters
    assert fresh.rng.bit_generator.state == saved_rng
    for name in ("model", "target_model", "selfplay_model"):
        _assert_same_tensors(getattr(p, name).state_dict(), getattr(fresh.p, name).state_dict(), name)
    opt_a, opt_b = t.learner.optimizer.state_dict(), fresh.t.learner.optimizer.state_dict()
    assert opt_a["param_groups"] == opt_b["param_groups"]
    assert opt_a["state"].keys() == opt_b["state"].keys() and len(opt_a["state"]) > 0
    for idx in opt_a["state"]:
        _assert_same_tensors(opt_a["state"][idx], opt_b["state"][idx], f"optimizer state {idx}")
    # The saved buffer comes back and self-play continues the saved environments mid-episode.
    num_envs = fresh.cfg.train.num_envs
    assert len(fresh.t.replay) == saved_len and fresh.t.replay.num_insertions == saved_insertions
    np.testing.assert_array_equal(fresh.t.replay.state_dict()["obs"][:saved_len], saved_obs)
    np.testing.assert_array_equal(fresh.t.selfplay.obs, t.selfplay.obs)
    assert len(fresh.t.replay.live_env_ids) == num_envs
    assert fresh.p.selfplay_rng.bit_generator.state == p.selfplay_rng.bit_generator.state


def test_unpicklable_envs_restart_their_episodes(tmp_path, monkeypatch):
    """Environments that cannot be pickled: resume closes the saved live episodes and opens fresh ones."""
    run_dir = tmp_path / "run"
    trainer = _trainer(run_dir)
    trainer.run()
    monkeypatch.setattr(type(trainer.t.selfplay), "state_dict", lambda self: None)
    trainer.save()
    saved_len = len(trainer.t.replay)
    fresh = _trainer(run_dir)
    assert fresh.try_resume()
    num_envs = fresh.cfg.train.num_envs
    assert len(fresh.t.replay) == saved_len + num_envs
    assert len(fresh.t.replay.live_env_ids) == num_envs


def test_try_resume_without_checkpoint_returns_false(tmp_path):
    trainer = _trainer(tmp_path / "empty")
    assert trainer.try_resume() is False
    assert trainer.c.env_steps == 0


def test_updates_wait_for_sampleable_positions(tmp_path):
    """``train.start_transitions=0``: the first positions become sampleable only once ``unroll_steps +
    td_steps`` later ones exist, so updates start then (catching up on the ones due) instead of failing."""
    run_dir = tmp_path / "run"
    args = [*TINY, "train.start_transitions=0", "train.num_envs=1", "env_steps=40", "eval.interval=1000",
            "eval.episodes=1", f"run_dir={run_dir}"]
    assert train_command(args) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["train_steps"] == 20  # replay_ratio 0.5 of 40 agent steps
