"""``ezrobot train|finetune|eval|video|bench|tasks``: the console entry point. It dispatches to ``ezrobot.commands``;
user errors print one line and exit 2."""
from __future__ import annotations

import sys
from typing import List, Sequence

from ezrobot.commands import COMMANDS
from ezrobot.interrupt import TrainingInterrupted
from ezrobot.usage import UsageError

USAGE = """usage: ezrobot <command> [args]

commands:
  train [key=value ...]        train (Hydra overrides, e.g. experiment=cartpole seed=1 run_dir=runs/a)
  finetune from=RUN_DIR [task=NEW_TASK] [key=value ...]
                               train a new run initialised from a trained run (adapt.* fields)
  eval run_dir=R [episodes=N] [checkpoint=PATH] [seed=S]
                               evaluate the latest (or a chosen) checkpoint of a run
  video run_dir=R | task=NAME policy=random  [episodes=N] [format=mp4|gif] [camera=C[,C2]]
        [out=FILE] [overlays=true|false] [fps=F] [size=HxW] [checkpoint=PATH] [seed=S]
                               render rollouts to a video file
  bench search|dmc|update|memory|probe|adapt [options]
                               benchmarks (JSON with --json)
  tasks list [--json] [--tag T]
                               list the registered reward-shaped tasks

`ezrobot train --help` lists every config field with its default."""


def _user_errors() -> tuple:
    from ezrobot.checkpoint import CheckpointError
    from ezrobot.config import ConfigError
    from ezrobot.envs.spec import EnvError
    from ezrobot.learner import NumericError

    errors: List[type] = [UsageError, ConfigError, EnvError, FileNotFoundError, CheckpointError, NumericError]
    try:
        from ezrobot.tasks import TaskError
        errors.append(TaskError)
    except Exception:  # noqa: BLE001 - e.g. mujoco refusing a bad $MUJOCO_GL: then no TaskError was raised
        pass
    return tuple(errors)


def _dispatch(argv: List[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command in COMMANDS:
        from ezrobot.envs.rendering import select_backend
        select_backend(strict=False)  # choose MUJOCO_GL before anything imports dm_control
    if command == "train":
        from ezrobot.commands import train
        return train.main(rest)
    if command == "finetune":
        from ezrobot.commands import finetune
        return finetune.main(rest)
    if command == "eval":
        from ezrobot.commands import eval as eval_command
        return eval_command.main(rest)
    if command == "video":
        from ezrobot.commands import video
        return video.main(rest)
    if command == "bench":
        from ezrobot.commands import bench
        return bench.main(rest)
    if command == "tasks":
        from ezrobot.commands import tasks
        return tasks.main(rest)
    raise UsageError(f"unknown command {command!r}; choose one of {', '.join(COMMANDS)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except KeyboardInterrupt:
        print("ezrobot: interrupted", file=sys.stderr)
        return 130
    except TrainingInterrupted as stop:  # `train` prints its own line with the resuming command; others here
        print(f"ezrobot: {stop}", file=sys.stderr)
        return stop.exit_code
    except Exception as err:  # only user errors are caught; the rest re-raise with a traceback
        if isinstance(err, _user_errors()):
            print(f"ezrobot: error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
