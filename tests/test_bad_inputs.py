"""Bad inputs end in one error line naming the field (exit 2), never in a traceback, and are caught before
any expensive work: configs, environment variables, output paths, a task whose observation changes shape
mid-episode and a replay that cannot fit in memory."""
import os
import subprocess
import sys

import pytest

from task_example import task_example_source
from ezrobot.replay.sizing import available_memory, estimate_nbytes, positions_needed

FAST = ["env_steps=40", "train.start_transitions=20", "log.progress=false", "eval.episodes=1", "threads=1"]


def _task_file(tmp_path, name="shifty.py"):
    """The docs' ball_reach example with an observation entry that shrinks after 0.1 s of an episode."""
    source = task_example_source()
    old = '"to_goal": self.to_goal(physics)}'
    assert old in source
    path = tmp_path / name
    path.write_text(source.replace(old, '"to_goal": self.to_goal(physics)[:1 if physics.data.time > 0.1 else 2]}'))
    return str(path)


CASES = {
    "action_repeat": (["train", "env.action_repeat=-2"], "env.action_repeat=-2"),
    "obs_shape": (["train", "task={shifty}"], "shape"),
    "mujoco_gl": (["video", "task=jaco_reach", "policy=random", "max_steps=2", "out={tmp}/v.mp4"], "$MUJOCO_GL"),
    "video_read_only": (["video", "task=jaco_reach", "policy=random", "out=/sys/ezrobot.mp4"], "out="),
    "video_missing_dir": (["video", "task=jaco_reach", "policy=random", "out={tmp}/nowhere/v.mp4"], "out="),
    "run_dir_read_only": (["train", "run_dir=/sys/ezrobot-run"], "run_dir="),
    "run_dir_is_a_file": (["train", "run_dir={tmp}/afile"], "run_dir="),
    "model_gradient_negative": (["train", "train.model_gradient_coeff=-1"], "train.model_gradient_coeff=-1"),
    "model_gradient_discrete": (["train", "train.model_gradient_coeff=1"], "train.model_gradient_coeff="),
    "critic_discrete": (["train", "model.critic_heads=2"], "model.critic_heads=2"),
    "entropy_target_discrete": (["train", "train.entropy_target=[0.5,-1.0]", "train.entropy_coeff=0.05"],
                                "train.entropy_target="),
    "one_step_discrete": (["train", "train.reanalyze_search=one_step"], "train.reanalyze_search="),
    "replay_too_big": (["train", "replay.capacity=1000000000000", "env_steps=1000000000000"], "replay.capacity="),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2(case, tmp_path):
    args, names = CASES[case]
    (tmp_path / "afile").write_text("not a directory")
    args = [a.format(tmp=tmp_path, shifty=_task_file(tmp_path) if "{shifty}" in a else "") for a in args]
    if args[0] == "train":
        args += [a for a in FAST if a.split("=")[0] not in {x.split("=")[0] for x in args}]
        if not any(a.startswith("run_dir=") for a in args):
            args.append(f"run_dir={tmp_path / 'run'}")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if case == "mujoco_gl":
        env["MUJOCO_GL"] = "bogus"
    proc = subprocess.run([sys.executable, "-m", "ezrobot", *args], env=env, cwd=tmp_path, text=True,
                          capture_output=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("ezrobot: run_dir=")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("ezrobot: error: "), proc.stderr[-3000:]
    assert names in lines[0]
    assert not list(tmp_path.glob("**/*.mp4")), "nothing is rendered before the output path is checked"


def test_replay_is_sized_by_the_budget(tmp_path):
    """A huge replay.capacity with a small budget allocates only what the budget can fill."""
    from ezrobot.factory import build_training
    from ezrobot.hydra_config import load_config

    cfg = load_config(["replay.capacity=300000000", "env_steps=200", f"run_dir={tmp_path}", "threads=1"])
    parts, training = build_training(cfg)
    assert training.replay.capacity == positions_needed(200, cfg.train.num_envs)
    assert training.replay.nbytes < 10 * 2**20
    assert abs(estimate_nbytes(training.replay.capacity, parts.spec, 2, 0) - training.replay.nbytes) < 1024
    assert available_memory() > 0
    training.selfplay.close()
