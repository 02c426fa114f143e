"""``ezrobot finetune from=RUN_DIR [task=NEW_TASK] [key=value ...]``: a new run initialised from a trained
run's newest intact checkpoint (the config's ``init_from`` and ``adapt`` group); re-running it resumes."""
from __future__ import annotations

import json
import shlex
import sys
from typing import List

from ezrobot.adapt.source import finetune_overrides
from ezrobot.hydra_config import load_config
from ezrobot.interrupt import TrainingInterrupted
from ezrobot.runs import train
from ezrobot.usage import UsageError

USAGE = """usage: ezrobot finetune from=RUN_DIR [task=NEW_TASK] [key=value ...]

Trains a new run (default run_dir runs/<experiment>-<task>-from-<source>-s<seed>) from the source run's
preset, model settings and newest intact checkpoint. The adapt.* fields choose the parts reused
(adapt.reuse), frozen (adapt.freeze, adapt.freeze_updates), their learning-rate multipliers (adapt.lr_<part>)
and whether the source's replay is reused (adapt.reuse_replay) with relabelled rewards (adapt.relabel);
`ezrobot train --help` lists them with every other field."""


def main(args: List[str]) -> int:
    """Compose the fine-tune config and train; prints the summary (130 / 143 after SIGINT / SIGTERM)."""
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return 0
    sources = [a.split("=", 1)[1] for a in args if a.startswith("from=")]
    if len(sources) != 1 or not sources[0]:
        raise UsageError("finetune needs one from=RUN_DIR (the trained source run), e.g. "
                         "`ezrobot finetune from=runs/robot_proprio-jaco_reach-s0 +env.gym_kwargs.obstacle=true`")
    rest = [a for a in args if not a.startswith("from=")]
    try:
        summary = train(load_config(finetune_overrides(sources[0], rest)))
    except TrainingInterrupted as stop:
        command = shlex.join(["ezrobot", "finetune", *args])
        print(f"ezrobot: {stop.signal_name} at {stop.env_steps} env steps: checkpoint written to "
              f"{stop.checkpoint}; resume with: {command}", file=sys.stderr)
        return stop.exit_code
    print(json.dumps(summary))
    return 0
