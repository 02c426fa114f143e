"""Determinism and exact resume at a tiny budget (``threads=1``): two identical runs give identical metrics;
a run stopped between evaluations (live episodes, a filled bootstrap-value cache) and resumed gives the
same metrics and weights as the uninterrupted run (env, search, sampling, augmentation, torch and numpy RNGs
and the environments themselves are checkpointed)."""
import json
import os

import pytest
import torch

from ezrobot.factory import build_training
from ezrobot.hydra_config import load_config
from ezrobot.interrupt import StopRequest, TrainingInterrupted
from ezrobot.logger import MetricsLogger
from ezrobot.trainer import Trainer

TINY = ["experiment=cartpole", "train.start_transitions=100", "train.batch_size=16", "search.num_simulations=4",
        "eval.episodes=2", "eval.interval=200", "log.progress=false", "replay.capacity=2000", "threads=1",
        "train.replay_ratio=0.5", "env_steps=500", "train.target_update_interval=30",
        "train.selfplay_update_interval=20"]


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _trainer(run_dir, extra=()):
    cfg = load_config([*TINY, *extra, f"run_dir={run_dir}"])
    parts, training = build_training(cfg)
    os.makedirs(cfg.run_dir, exist_ok=True)
    return Trainer(parts, training, MetricsLogger(cfg.run_dir))


def _rows(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if k != "wall_time_s"} for line in f if line.strip()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("exact") / "a"
    trainer = _trainer(run_dir)
    trainer.run()
    return run_dir, {k: v.clone() for k, v in trainer.p.model.state_dict().items()}


def test_two_runs_give_identical_metrics(uninterrupted, tmp_path):
    run_dir, _ = uninterrupted
    _trainer(tmp_path / "b").run()
    assert _rows(tmp_path / "b") == _rows(run_dir)
    assert [r["env_steps"] for r in _rows(run_dir)] == [200, 400, 500]


@pytest.mark.parametrize("stop_at", [130, 333])
def test_resume_is_exact(uninterrupted, tmp_path, stop_at):
    run_dir, weights = uninterrupted
    trainer, stop = _trainer(tmp_path / "c"), StopRequest()
    collect = trainer.collect

    def collect_then_stop():
        collect()
        if trainer.c.env_steps >= stop_at and not stop.requested:
            stop.request()

    trainer.collect = collect_then_stop
    with pytest.raises(TrainingInterrupted):
        trainer.run(stop)
    assert stop_at <= trainer.c.env_steps < stop_at + 4
    resumed = _trainer(tmp_path / "c")
    resumed.run()
    assert _rows(tmp_path / "c") == _rows(run_dir)
    for key, value in resumed.p.model.state_dict().items():
        assert torch.equal(value, weights[key]), key
