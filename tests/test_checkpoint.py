"""Atomic checkpoints (ezrobot.checkpoint): save/load round trip, pruning, leftovers and ``latest``."""
import os

import numpy as np
import pytest
import torch

from ezrobot import checkpoint as ck
from ezrobot.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


def _state(step: int):
    gen = torch.Generator().manual_seed(step)
    return {"model": {"w": torch.randn(3, 4, generator=gen), "b": torch.arange(5)},
            "counters": {"env_steps": step, "updates": step // 2}, "note": f"step {step}"}


def _replay(step: int):
    return {"obs": np.full((6, 2), step, np.float32), "episode": np.arange(6, dtype=np.int64),
            "ptr": step % 6, "max_priority": 1.5}


def _root(run_dir):
    return os.path.join(run_dir, ck.CHECKPOINT_DIR)


def test_round_trip(tmp_path):
    path = save_checkpoint(str(tmp_path), 120, _state(120), _replay(120))
    assert os.path.basename(path) == "step_0000000120"
    state, replay = load_checkpoint(path)
    expected = _state(120)
    assert torch.equal(state["model"]["w"], expected["model"]["w"])
    assert torch.equal(state["model"]["b"], expected["model"]["b"])
    assert state["counters"] == expected["counters"] and state["note"] == "step 120"
    np.testing.assert_array_equal(replay["obs"], _replay(120)["obs"])
    assert replay["obs"].dtype == np.float32 and replay["episode"].dtype == np.int64
    assert replay["ptr"] == 0 and isinstance(replay["ptr"], int)
    assert replay["max_priority"] == 1.5 and isinstance(replay["max_priority"], float)


def test_without_replay(tmp_path):
    path = save_checkpoint(str(tmp_path), 5, _state(5), None)
    assert not os.path.exists(os.path.join(path, "replay.npz"))
    state, replay = load_checkpoint(path)
    assert replay is None and state["counters"]["env_steps"] == 5
    path = save_checkpoint(str(tmp_path), 6, _state(6), _replay(6))
    assert load_checkpoint(path, with_replay=False)[1] is None


def test_latest_and_keep_pruning(tmp_path):
    run = str(tmp_path)
    assert latest_checkpoint(run) is None
    for step in (100, 200, 300, 400):
        path = save_checkpoint(run, step, _state(step), _replay(step), keep=2)
        assert latest_checkpoint(run) == path
    names = sorted(n for n in os.listdir(_root(run)) if n.startswith("step_"))
    assert names == ["step_0000000300", "step_0000000400"]
    with open(os.path.join(_root(run), "latest")) as f:
        assert f.read().strip() == "step_0000000400"
    state, _ = load_checkpoint(latest_checkpoint(run))
    assert state["counters"]["env_steps"] == 400


@pytest.mark.parametrize("keep", [1, 3])
def test_keep_n(tmp_path, keep):
    for step in range(1, 6):
        save_checkpoint(str(tmp_path), step * 10, _state(step), None, keep=keep)
    names = sorted(n for n in os.listdir(_root(str(tmp_path))) if n.startswith("step_"))
    assert names == [f"step_{s * 10:010d}" for s in range(6 - keep, 6)]


def test_pruning_orders_steps_numerically(tmp_path):
    """Step 1000 is newer than step 999 even though '999' > '1000' as strings."""
    save_checkpoint(str(tmp_path), 999, _state(1), None, keep=1)
    path = save_checkpoint(str(tmp_path), 1000, _state(2), None, keep=1)
    assert latest_checkpoint(str(tmp_path)) == path
    assert sorted(os.listdir(_root(str(tmp_path)))) == ["latest", "step_0000001000"]


def test_resaving_the_same_step_replaces_it(tmp_path):
    save_checkpoint(str(tmp_path), 50, _state(1), None)
    path = save_checkpoint(str(tmp_path), 50, _state(2), None)
    state, _ = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], _state(2)["model"]["w"])


def test_leftover_tmp_dir_is_ignored_and_cleaned(tmp_path):
    run = str(tmp_path)
    good = save_checkpoint(run, 100, _state(100), None)
    leftover = os.path.join(_root(run), ".tmp-200-99999")
    os.makedirs(leftover)
    with open(os.path.join(leftover, "state.pt"), "wb") as f:
        f.write(b"truncated")
    assert latest_checkpoint(run) == good
    new = save_checkpoint(run, 200, _state(200), None)
    assert not os.path.exists(leftover)
    assert latest_checkpoint(run) == new


def test_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run = str(tmp_path)
    good = save_checkpoint(run, 100, _state(100), _replay(100))
    real_save = torch.save

    def crash(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(run, 200, _state(200), _replay(200))
    monkeypatch.setattr(ck.torch, "save", real_save)
    assert latest_checkpoint(run) == good
    state, replay = load_checkpoint(latest_checkpoint(run))
    assert state["counters"]["env_steps"] == 100 and replay["ptr"] == 100 % 6
    assert any(n.startswith(".tmp-") for n in os.listdir(_root(run)))
    save_checkpoint(run, 300, _state(300), None)
    assert not any(n.startswith(".tmp-") for n in os.listdir(_root(run)))


def test_latest_falls_back_when_the_pointer_is_stale(tmp_path):
    run = str(tmp_path)
    save_checkpoint(run, 100, _state(100), None, keep=5)
    second = save_checkpoint(run, 200, _state(200), None, keep=5)
    with open(os.path.join(_root(run), "latest"), "w") as f:
        f.write("step_0000009999\n")
    assert latest_checkpoint(run) == second
    os.remove(os.path.join(_root(run), "latest"))
    assert latest_checkpoint(run) == second
    os.remove(os.path.join(second, "state.pt"))  # an incomplete directory never counts
    assert latest_checkpoint(run).endswith("step_0000000100")


def test_weights_of_another_architecture_give_a_one_line_error():
    from ezrobot.checkpoint import load_model_weights
    from ezrobot.config import ConfigError
    from ezrobot.envs.spec import EnvSpec
    from ezrobot.nets import ModelConfig, build_model

    spec = EnvSpec("dmc/cartpole-balance", (9, 64, 64), "uint8", 3, "continuous", 1, 0.99, 8, 125)
    old = build_model(ModelConfig(preset="small", projection_norm="layer"), spec)
    new = build_model(ModelConfig(preset="small"), spec)  # BatchNorm projector: other parameters
    with pytest.raises(ConfigError, match=r"checkpoint 'runs/x/step_1' does not fit .*missing simsiam"):
        load_model_weights(new, old.state_dict(), "runs/x/step_1")
    same = build_model(ModelConfig(preset="small", projection_norm="layer"), spec)
    load_model_weights(same, old.state_dict(), "runs/x/step_1")
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), old.state_dict().values()))


@pytest.mark.parametrize("name", ["state.pt", "replay.npz"])
def test_a_truncated_newest_checkpoint_falls_back_to_the_intact_one(tmp_path, name):
    run = str(tmp_path)
    good = save_checkpoint(run, 100, _state(100), _replay(100))
    bad = save_checkpoint(run, 200, _state(200), _replay(200))
    assert ck.check_checkpoint(bad) is None and ck.find_checkpoint(run) == (bad, [])
    with open(os.path.join(bad, name), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(bad, name)) // 2)
    path, damaged = ck.find_checkpoint(run)
    assert path == good and len(damaged) == 1 and damaged[0].startswith(bad) and name in damaged[0]
    line = ck.damaged_message(damaged, path)
    assert "\n" not in line and bad in line and good in line
    # Loading weights only needs state.pt: a damaged replay file alone does not block evaluation.
    assert ck.find_checkpoint(run, files=("state.pt",))[0] == (good if name == "state.pt" else bad)


def test_an_altered_file_of_the_same_size_is_caught(tmp_path):
    path = save_checkpoint(str(tmp_path), 100, _state(100), None)
    with open(os.path.join(path, "state.pt"), "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    assert "sha256" in ck.check_checkpoint(path)
    assert ck.find_checkpoint(str(tmp_path)) == (None, [f"{path}: state.pt does not match its sha256"])
