"""SIGINT and SIGTERM during ``ezrobot train``: a checkpoint is written at the next agent step, one line says
where and which command resumes, the exit status is 130 / 143, and re-running the same command continues with
no duplicated or lost metrics rows."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ezrobot import cli
from ezrobot.interrupt import StopRequest, TrainingInterrupted
from ezrobot.trainer import Trainer

ARGS = ["train", "experiment=cartpole", "train.start_transitions=100", "train.batch_size=16",
        "search.num_simulations=4", "eval.episodes=2", "eval.interval=200", "log.progress=false",
        "replay.capacity=2000", "threads=1", "train.replay_ratio=0.5", "env_steps=800"]


def _start(run_dir):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-m", "ezrobot", *ARGS, f"run_dir={run_dir}"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _latest(run_dir):
    try:
        with open(run_dir / "checkpoints" / "latest") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def _signal_after_checkpoint(proc, run_dir, signum, after=None, timeout=180):
    """Send ``signum`` once the newest checkpoint differs from ``after``; return (rc, stdout, stderr)."""
    deadline = time.time() + timeout
    while _latest(run_dir) in (None, after):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _check_stop_line(err, run_dir, name):
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if name in line]
    assert len(lines) == 1, err
    line = lines[0]
    steps = int(line.split(" at ")[1].split()[0])
    assert "resume with: ezrobot train " in line and f"run_dir={run_dir}" in line
    assert line.split("checkpoint written to ")[1].split(";")[0].endswith(f"step_{steps:010d}")
    assert _latest(run_dir) == f"step_{steps:010d}"
    return steps


def test_sigint_then_sigterm_then_resume(tmp_path):
    run_dir = tmp_path / "run"
    rc, _, err = _signal_after_checkpoint(_start(run_dir), run_dir, signal.SIGINT)
    assert rc == 130, err
    first = _check_stop_line(err, run_dir, "SIGINT")
    rc, _, err = _signal_after_checkpoint(_start(run_dir), run_dir, signal.SIGTERM, after=_latest(run_dir))
    assert rc == 143, err
    second = _check_stop_line(err, run_dir, "SIGTERM")
    assert 200 <= first < second < 800
    proc = _start(run_dir)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["env_steps"] == 800 and summary["train_steps"] == (800 - 100) // 2
    with open(run_dir / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    assert [r["env_steps"] for r in rows] == [200, 400, 600, 800]
    updates = [r["train_steps"] for r in rows]
    assert updates == [(s - 100) // 2 for s in (200, 400, 600, 800)]


def test_stop_request_raises_on_a_second_signal():
    stop = StopRequest()
    assert not stop.requested
    stop.request(signal.SIGTERM)
    assert stop.requested and stop.signum == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt):
        stop.request(signal.SIGINT)
    err = TrainingInterrupted(signal.SIGTERM, "ckpt", 10)
    assert err.exit_code == 143 and err.signal_name == "SIGTERM"


def test_sigint_during_the_final_evaluation_saves_and_exits_130(tmp_path, monkeypatch, capsys):
    """The signal arrives while the last evaluation runs: it finishes, the final checkpoint is written and the
    command exits 130 (not 0); the same command then completes the run without training further."""
    evaluate, sent = Trainer.evaluate, []

    def evaluate_with_a_signal(self):
        if self.c.env_steps == 300 and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # the trainer's handler only sets its stop flag
        return evaluate(self)

    monkeypatch.setattr(Trainer, "evaluate", evaluate_with_a_signal)
    args = [*ARGS[1:], "env_steps=300", f"run_dir={tmp_path / 'run'}"]
    before = torch.get_num_threads()
    try:
        assert cli.main(["train", *args]) == 130
        err = capsys.readouterr().err
        assert "SIGINT at 300 env steps: checkpoint written to " in err and "step_0000000300" in err
        assert _latest(tmp_path / "run") == "step_0000000300"
        assert not (tmp_path / "run" / "summary.json").exists()
        assert cli.main(["train", *args]) == 0
    finally:
        torch.set_num_threads(before)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["env_steps"] == 300 and len(sent) == 1
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        assert [json.loads(line)["env_steps"] for line in f] == [200, 300]
