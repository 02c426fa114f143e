"""A run of a task file (``task=ball_reach.py``, relative to the working directory) saves the file's absolute
path, so eval, video and resume work from another directory."""
import json

import pytest
import torch
import yaml

from ezrobot import cli
from task_example import task_example_source

TINY = ["env_steps=60", "train.start_transitions=30", "train.batch_size=8", "search.num_simulations=2",
        "search.num_sampled_actions=4", "model.preset=small", "eval.episodes=1", "eval.interval=1000",
        "env.max_episode_steps=20", "log.progress=false", "threads=1"]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_task_file_path_is_saved_absolute(tmp_path, monkeypatch, capsys):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "ball_reach.py").write_text(task_example_source())
    run_dir = tmp_path / "run"
    monkeypatch.chdir(here)
    assert cli.main(["train", "task=ball_reach.py", f"run_dir={run_dir}", *TINY]) == 0
    with open(run_dir / "config.yaml") as f:
        assert yaml.safe_load(f)["task"] == str(here / "ball_reach.py")
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["env_steps"]
    monkeypatch.chdir(elsewhere)
    assert cli.main(["eval", f"run_dir={run_dir}", "episodes=1"]) == 0
    assert json.loads(capsys.readouterr().out)["env_steps"] == trained
    assert cli.main(["video", f"run_dir={run_dir}", "max_steps=2", "size=32x32", f"out={tmp_path / 'v.gif'}"]) == 0
    assert (tmp_path / "v.gif").exists()
    # Resuming from the first directory with the same relative path is the same run.
    monkeypatch.chdir(here)
    assert cli.main(["train", "task=ball_reach.py", f"run_dir={run_dir}", *TINY, "env_steps=80"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["env_steps"] > trained
