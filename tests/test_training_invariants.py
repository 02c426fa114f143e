"""What the learner must keep doing: the target and self-play networks are refreshed exactly at their
intervals (and hold still in between), and ``train.bf16=true`` computes the same loss as fp32 within a
bfloat16 tolerance."""
import os

import pytest
import torch

from ezrobot.factory import build_training
from ezrobot.hydra_config import load_config
from ezrobot.logger import MetricsLogger
from ezrobot.precision import bf16_autocast
from ezrobot.trainer import Trainer

TINY = ["experiment=cartpole", "train.start_transitions=100", "train.batch_size=16", "search.num_simulations=4",
        "eval.episodes=1", "eval.interval=1000", "log.progress=false", "replay.capacity=2000", "threads=1",
        "train.replay_ratio=0.5", "env_steps=160", "train.target_update_interval=7",
        "train.selfplay_update_interval=5"]


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    before = torch.get_num_threads()
    cfg = load_config([*TINY, f"run_dir={tmp_path_factory.mktemp('inv') / 'run'}"])
    parts, training = build_training(cfg)
    os.makedirs(cfg.run_dir)
    trainer = Trainer(parts, training, MetricsLogger(cfg.run_dir))
    trainer.run()
    yield trainer
    torch.set_num_threads(before)


def _copy(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(model, weights):
    return all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_target_and_selfplay_networks_refresh_at_their_intervals(trainer):
    p, c = trainer.p, trainer.c
    refreshed = {"target_model": 7, "selfplay_model": 5}
    held = {name: _copy(getattr(p, name)) for name in refreshed}
    seen = {name: 0 for name in refreshed}
    for _ in range(15):
        trainer.update()
        online = _copy(p.model)
        for name, interval in refreshed.items():
            net = getattr(p, name)
            if c.updates % interval == 0:
                assert _same(net, online), f"{name} not refreshed at update {c.updates}"
                held[name] = online
                seen[name] += 1
            else:
                assert _same(net, held[name]), f"{name} changed at update {c.updates} (interval {interval})"
                assert not _same(net, online), f"{name} follows the online network at update {c.updates}"
    assert seen == {"target_model": 2, "selfplay_model": 3}


def test_bf16_loss_matches_fp32(trainer):
    _, batch, _ = trainer.sample_batch()
    learner = trainer.t.learner
    with torch.no_grad():
        loss32, metrics32, value32 = learner.compute_loss(batch, trainer.c.updates)
        with bf16_autocast(trainer.p.device, True):
            loss16, metrics16, value16 = learner.compute_loss(batch, trainer.c.updates)
    assert loss16.dtype in (torch.float32, torch.bfloat16)
    assert float(loss16) == pytest.approx(float(loss32), rel=0.03)
    for key in ("loss/value", "loss/policy", "loss/value_prefix"):
        assert metrics16[key] == pytest.approx(metrics32[key], rel=0.03, abs=1e-3), key
    assert torch.allclose(value16.float(), value32.float(), rtol=0.05, atol=0.05)
    assert float(loss16) != float(loss32)  # the autocast really ran: bfloat16 rounding shows
