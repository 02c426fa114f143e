"""``ezrobot finetune from=RUN_DIR [task=NEW_TASK] [key=value ...]``: a new run initialised from a trained
run's newest intact checkpoint (the config's ``init_from`` and ``adapt`` group); re-running it resumes."""
from __future__ import annotations

from typing import List

from ezrobot.adapt.source import finetune_overrides
from ezrobot.commands.train import train_and_report
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
    return train_and_report(finetune_overrides(sources[0], rest), ["ezrobot", "finetune", *args])
