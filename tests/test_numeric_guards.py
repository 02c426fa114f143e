"""NaN or inf in a target, a loss term or a gradient stops training with one line naming it (exit 2), before
the optimizer step: the weights are untouched and the last checkpoint stays the newest, intact one."""
import os

import numpy as np
import pytest
import torch

from ezrobot import cli
from ezrobot.checkpoint import find_checkpoint, load_checkpoint
from ezrobot.factory import build_training
from ezrobot.hydra_config import load_config
from ezrobot.learner import NumericError
from ezrobot.logger import MetricsLogger
from ezrobot.reanalyze import Reanalyzer
from ezrobot.trainer import Trainer

TINY = ["experiment=cartpole", "train.start_transitions=100", "train.batch_size=16", "search.num_simulations=4",
        "eval.episodes=1", "eval.interval=200", "log.progress=false", "replay.capacity=2000", "threads=1",
        "train.replay_ratio=0.5", "env_steps=400"]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_nan_target_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    real = Reanalyzer.make_batch

    def poisoned(self, positions, weights, step, rng):
        batch, metrics = real(self, positions, weights, step, rng)
        if step >= 60:  # after the checkpoint at 200 env steps (50 updates)
            batch.value[0, 0] = float("nan")
        return batch, metrics

    monkeypatch.setattr(Reanalyzer, "make_batch", poisoned)
    run_dir = tmp_path / "run"
    assert cli.main(["train", *TINY, f"run_dir={run_dir}"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("ezrobot: run_dir=")]
    assert len(lines) == 1 and lines[0].startswith("ezrobot: error: non-finite value target at update 60"), lines
    path, damaged = find_checkpoint(str(run_dir))
    assert path.endswith("step_0000000200") and not damaged
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["latest", "step_0000000200"]
    state, _ = load_checkpoint(path, with_replay=False)
    assert all(bool(torch.isfinite(w).all()) for w in state["model"].values() if w.is_floating_point())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = load_config([*TINY, "env_steps=150", "eval.interval=1000",
                       f"run_dir={tmp_path_factory.mktemp('guards') / 'run'}"])
    parts, training = build_training(cfg)
    os.makedirs(cfg.run_dir)
    trainer = Trainer(parts, training, MetricsLogger(cfg.run_dir))
    trainer.run()
    return trainer


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_nan_loss_term_is_named(trained, monkeypatch):
    positions, batch, _ = trained.sample_batch()
    learner, before = trained.t.learner, _weights(trained.p.model)
    real = learner.compute_loss

    def poisoned(batch, step=None):
        loss, metrics, root = real(batch, step)
        metrics["loss/policy"] = float("inf")
        return loss * float("inf"), metrics, root

    monkeypatch.setattr(learner, "compute_loss", poisoned)
    with pytest.raises(NumericError, match=r"non-finite loss/policy \(inf\) at update"):
        learner.update(batch, trained.c.updates)
    for key, value in _weights(trained.p.model).items():
        assert torch.equal(value, before[key]), key


def test_nan_gradient_is_named_and_no_step_is_taken(trained):
    positions, batch, _ = trained.sample_batch()
    learner = trained.t.learner
    learner.update(batch, trained.c.updates)
    used = [(n, p) for n, p in trained.p.model.named_parameters() if p.grad is not None]
    name, param = used[len(used) // 2]  # not the first: the named parameter must be the bad one
    before = _weights(trained.p.model)
    handle = param.register_hook(lambda grad: grad * float("nan"))
    try:
        with pytest.raises(NumericError, match=f"non-finite gradient of {name} at update"):
            learner.update(batch, trained.c.updates)
    finally:
        handle.remove()
    for key, value in _weights(trained.p.model).items():
        assert torch.equal(value, before[key]), key
    metrics, priorities = learner.update(batch, trained.c.updates)  # the next clean batch trains again
    assert np.isfinite(metrics["loss/total"]) and np.isfinite(priorities).all()


def test_poisoned_weights_are_never_checkpointed(trained):
    before = sorted(os.listdir(os.path.join(trained.cfg.run_dir, "checkpoints")))
    name, param = next(iter(trained.p.model.named_parameters()))
    saved = param.detach().clone()
    with torch.no_grad():
        param.view(-1)[0] = float("nan")
    try:
        with pytest.raises(NumericError, match=f"non-finite weights in {name}"):
            trained.save()
    finally:
        with torch.no_grad():
            param.copy_(saved)
    assert sorted(os.listdir(os.path.join(trained.cfg.run_dir, "checkpoints"))) == before
