"""The README's commands run as written: the quick start's ``ezrobot train``, then the video examples on the run
it made, and the task guide (README's "Define your own task" and docs/tasks.md: the example file, its check
and its training run). Each command is read from the docs and only gets budget overrides appended (tiny
env-step budgets, one short video episode), in a fresh working directory."""
import os
import re
import shlex

import pytest
import torch

from ezrobot import cli
from task_example import task_example_source

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_TRAIN = ["env_steps=300", "train.start_transitions=100", "train.batch_size=16", "search.num_simulations=4",
              "eval.episodes=1", "eval.interval=300", "log.progress=false", "threads=1"]
TINY_TASK = ["env_steps=60", "train.start_transitions=30", "train.batch_size=8", "search.num_simulations=2",
             "search.num_sampled_actions=4", "eval.episodes=1", "env.max_episode_steps=20", "log.progress=false",
             "threads=1"]
TINY_VIDEO = ["episodes=1", "max_steps=5", "size=48x64"]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def _section(text, title):
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no '## {title}' section"
    return match.group(1)


def _commands(text, program):
    """The command lines of the fenced blocks of ``text`` that start with ``program`` (comments removed)."""
    lines = [line for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M) for line in block.splitlines()]
    found = []
    for line in lines:
        for part in line.split("&&"):
            part = part.strip()
            if part.startswith(program + " ") or part == program:
                found.append(shlex.split(part, comments=True))
    return found


def _run(argv, extra):
    assert argv[0] == "ezrobot", argv
    rc = cli.main([*argv[1:], *extra])
    assert rc == 0, f"`{shlex.join(argv)}` (with {' '.join(extra)}) exited {rc}"


def test_quick_start_and_video_examples_run(tmp_path, monkeypatch):
    readme = _read("README.md")
    train = _commands(_section(readme, "Quick start"), "ezrobot")
    assert [c[:2] for c in train] == [["ezrobot", "train"]], train
    videos = _commands(_section(readme, "Videos"), "ezrobot")
    assert len(videos) >= 2 and all(c[1] == "video" for c in videos), videos
    monkeypatch.chdir(tmp_path)
    _run(train[0], TINY_TRAIN)
    assert os.path.exists(os.path.join("runs", "cartpole-gym_CartPole-v1-s0", "summary.json"))
    for video in videos:
        _run(video, TINY_VIDEO)
        out = next(a.split("=", 1)[1] for a in video if a.startswith("out="))
        assert os.path.getsize(out) > 0, out


def test_task_guide_runs(tmp_path, monkeypatch, capsys):
    guide, readme = _read("docs", "tasks.md"), _read("README.md")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ball_reach.py").write_text(task_example_source())
    checks = _commands(guide, "python")
    assert len(checks) == 1 and checks[0][1] == "-c", checks
    exec(compile(checks[0][2], "<docs/tasks.md>", "exec"), {})  # noqa: S102 - the guide's check, as written
    assert capsys.readouterr().out.strip()
    commands = _commands(guide, "ezrobot") + _commands(_section(readme, "Define your own task"), "ezrobot")
    assert [c[:2] for c in commands].count(["ezrobot", "train"]) >= 2, commands
    for command in {shlex.join(c): c for c in commands}.values():  # the same train command in both: once
        _run(command, TINY_TASK if command[1] == "train" else [])
    assert os.path.isdir(os.path.join("runs", "cartpole-ball_reach-s0", "checkpoints"))
