"""kill -9 at 10 seeded random moments of a short CartPole run (half of them while a checkpoint is being
written), each time re-running the same command: the run resumes from its newest intact checkpoint, env steps
continue, and at the end ``metrics.jsonl`` holds every evaluation row once, in order, and the run finishes."""
import json
import os
import random
import subprocess
import sys
import time

from ezrobot.logger import MetricsLogger

BUDGET, EVAL_EVERY, START = 800, 100, 100
ARGS = ["train", "experiment=cartpole", f"train.start_transitions={START}", "train.batch_size=16",
        "search.num_simulations=4", "eval.episodes=1", f"eval.interval={EVAL_EVERY}", "log.progress=false",
        "replay.capacity=2000", "threads=1", "train.replay_ratio=0.5", f"env_steps={BUDGET}",
        "log.checkpoint_interval=16"]
KILLS = 10


def _start(run_dir, err_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    with open(err_path, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "ezrobot", *ARGS, f"run_dir={run_dir}"], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)


def _latest_step(run_dir):
    try:
        with open(run_dir / "checkpoints" / "latest") as f:
            return int(f.read().strip().split("_")[1])
    except FileNotFoundError:
        return 0


def _wait_started(proc, err_path, timeout=120):
    """Until the command printed its start line (config built, about to resume): True, or False if it ended."""
    deadline = time.time() + timeout
    while proc.poll() is None:
        with open(err_path) as f:
            if "ezrobot: run_dir=" in f.read():
                return True
        assert time.time() < deadline, "the run did not start"
        time.sleep(0.02)
    return False


def _temporary(run_dir):
    try:
        return {name for name in os.listdir(run_dir / "checkpoints") if name.startswith(".tmp-")}
    except FileNotFoundError:
        return set()


def _wait_for_checkpoint_write(proc, run_dir, nth, timeout=20):
    """Poll (every ~1 ms) until the ``nth`` temporary checkpoint directory of this process appears, i.e. its
    ``nth`` checkpoint is being written."""
    seen, deadline = _temporary(run_dir), time.time() + timeout
    stale = set(seen)  # left by a process killed earlier; removed at the next save
    while proc.poll() is None and time.time() < deadline:
        seen |= _temporary(run_dir)
        if len(seen - stale) >= nth:
            return
        time.sleep(0.001)


def test_kill9_at_random_moments_then_resume(tmp_path):
    rng, run_dir, err_path = random.Random(20), tmp_path / "run", tmp_path / "stderr.txt"
    steps_at_kill, mid_write = [], 0
    for kill in range(KILLS):
        proc = _start(run_dir, err_path)
        if _wait_started(proc, err_path):
            if kill % 2:
                _wait_for_checkpoint_write(proc, run_dir, nth=rng.randint(1, 4))
            else:
                time.sleep(rng.uniform(0.0, 2.0))
            proc.kill()
        proc.wait(timeout=60)
        mid_write += bool(_temporary(run_dir))
        with open(err_path) as f:
            assert "Traceback" not in f.read()
        steps_at_kill.append(_latest_step(run_dir))
    assert steps_at_kill == sorted(steps_at_kill) and steps_at_kill[-1] > 0, steps_at_kill
    assert mid_write >= 1, "no kill landed during a checkpoint write"
    proc = _start(run_dir, err_path)
    assert proc.wait(timeout=300) == 0, open(err_path).read()
    with open(run_dir / "summary.json") as f:
        summary = json.load(f)
    assert summary["env_steps"] == BUDGET and summary["train_steps"] == (BUDGET - START) // 2
    with open(run_dir / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert [r["env_steps"] for r in rows] == list(range(EVAL_EVERY, BUDGET + 1, EVAL_EVERY))
    assert [r["train_steps"] for r in rows] == [max(0, s - START) // 2 for s in range(EVAL_EVERY, BUDGET + 1,
                                                                                      EVAL_EVERY)]
    names = os.listdir(run_dir / "checkpoints")
    assert f"step_{BUDGET:010d}" in names and not any(n.startswith(".tmp-") for n in names), names


def test_a_metrics_line_cut_short_by_a_kill_is_dropped(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"env_steps": 100}\n{"env_steps": 200}\n{"env_st')
    logger = MetricsLogger(str(tmp_path))
    assert [r["env_steps"] for r in logger.rows] == [100, 200]
    logger.log({"env_steps": 300})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["env_steps"] for line in lines] == [100, 200, 300]
