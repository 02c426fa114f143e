"""Command-line behaviour of ``python -m ezrobot``: user errors exit 2 with one ``ezrobot: error:`` line on
stderr, no traceback, and no run directory. The subprocesses run concurrently to keep the file fast."""
import os
import subprocess
import sys

import pytest

from ezrobot import cli

# (override, words the error line must contain)
BAD_TRAIN_ARGS = {
    "unknown_key": ("foo=1", ["foo"]),
    "zero_simulations": ("search.num_simulations=0", ["num_simulations", "0"]),
    "unknown_experiment": ("experiment=nope", ["experiment", "nope"]),
    "unknown_gym_id": ("task=gym/NoSuchEnv-v0", ["NoSuchEnv-v0"]),
    "unknown_atari_game": ("task=atari/NoSuchGame", ["NoSuchGame"]),
    "non_integer_seed": ("seed=abc", ["seed", "abc"]),
    "unknown_optimizer": ("optim.optimizer=rmsprop", ["optim.optimizer", "rmsprop"]),
    "unknown_search_variant": ("search.variant=mcts", ["search.variant", "mcts", "puct, gumbel"]),
    "removed_field": ("train.compile=true", ["train.compile", "removed"]),
}


@pytest.fixture(scope="module")
def bad_train_runs(tmp_path_factory):
    """Start every bad ``ezrobot train`` concurrently, each in an empty working directory."""
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"), PYTHONWARNINGS="ignore")
    procs = {}
    for name, (override, _) in BAD_TRAIN_ARGS.items():
        cwd = tmp_path_factory.mktemp(name)
        cmd = [sys.executable, "-m", "ezrobot", "train", override, "env_steps=300", "log.progress=false"]
        procs[name] = (cwd, subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True))
    results = {}
    for name, (cwd, proc) in procs.items():
        out, err = proc.communicate(timeout=120)
        results[name] = (cwd, proc.returncode, out, err)
    return results


@pytest.mark.parametrize("name", list(BAD_TRAIN_ARGS))
def test_bad_train_argument_is_one_clear_line(bad_train_runs, name):
    cwd, code, out, err = bad_train_runs[name]
    override, words = BAD_TRAIN_ARGS[name]
    assert code == 2, f"{override}: exit {code}\nstderr:\n{err}"
    lines = err.splitlines()
    assert len(lines) == 1, f"{override}: expected one stderr line, got:\n{err}"
    assert lines[0].startswith("ezrobot: error: "), lines[0]
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], f"{word!r} missing from {lines[0]!r}"
    assert os.listdir(cwd) == [], f"{override}: created {os.listdir(cwd)} (no run directory expected)"
    assert out == ""


def test_unknown_key_message_says_unknown():
    """The loader has a dedicated ``unknown config key`` message; a top-level typo should get it."""
    from ezrobot.config import ConfigError
    from ezrobot.hydra_config import load_config

    with pytest.raises(ConfigError) as info:
        load_config(["train.batch_sise=3"])
    assert "batch_sise" in str(info.value)



def test_task_kwargs_are_added_with_plus_and_the_error_says_so():
    from ezrobot.config import ConfigError
    from ezrobot.hydra_config import load_config

    assert load_config(["+env.gym_kwargs.delta_fraction=0.1"]).env.gym_kwargs == {"delta_fraction": 0.1}
    for bad in ("env.gym_kwargs={delta_fraction:0.1}", "env.gym_kwargs.delta_fraction=0.1"):
        with pytest.raises(ConfigError, match=r"\+env\.gym_kwargs\.<name>=<value>"):
            load_config([bad])


def _main(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_and_usage(capsys):
    code, out, _ = _main(capsys, "--help")
    assert code == 0 and "train" in out and "eval run_dir=R" in out
    code, out, _ = _main(capsys)
    assert code == 0 and "usage: ezrobot" in out
    code, out, _ = _main(capsys, "train", "--help")
    assert code == 0 and "search.num_simulations=" in out and "train.batch_size=" in out


@pytest.mark.parametrize("argv, words", [
    (["frobnicate"], ["frobnicate", "train"]),
    (["train", "positional"], ["positional", "key=value"]),
    (["eval"], ["run_dir"]),
    (["eval", "run_dir=/nonexistent/ezrobot-run"], ["/nonexistent/ezrobot-run", "config.yaml"]),
    (["eval", "run_dir=x", "episodez=2"], ["episodez", "episodes"]),
    (["video"], ["run_dir", "task"]),
    (["video", "task=jaco_reach", "format=avi"], ["format", "avi"]),
    (["video", "task=jaco_reach", "size=10x10"], ["size", "10x10"]),
    (["video", "task=jaco_reach", "policy=trained"], ["run_dir"]),
])
def test_in_process_usage_errors_exit_2(capsys, tmp_path, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    code, out, err = _main(capsys, *argv)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ezrobot: error: "), err
    for word in words:
        assert word in lines[0], f"{word!r} missing from {lines[0]!r}"
    assert os.listdir(tmp_path) == []


def test_eval_of_a_run_without_checkpoint_is_a_clear_error(capsys, tmp_path):
    from ezrobot.hydra_config import load_config, to_yaml

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(to_yaml(load_config([f"run_dir={run_dir}"])))
    code, _, err = _main(capsys, "eval", f"run_dir={run_dir}")
    assert code == 2 and "no checkpoint" in err and len(err.splitlines()) == 1
