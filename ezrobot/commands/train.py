"""``ezrobot train [key=value ...]``: compose the config and train (resuming when the run directory has one)."""
from __future__ import annotations

import json
import shlex
import sys
from typing import List

from ezrobot.hydra_config import load_config, schema_help
from ezrobot.interrupt import TrainingInterrupted
from ezrobot.runs import train


def main(args: List[str]) -> int:
    """Print ``--help`` (every config field with its default and docstring) or train; prints the summary.

    Returns:
        0, or 130 / 143 after SIGINT / SIGTERM (a checkpoint was written; the same command resumes).
    """
    if any(a in ("-h", "--help") for a in args):
        print("usage: ezrobot train [key=value ...]\n\nconfig fields (defaults of the schema; presets "
              "override them):\n" + schema_help())
        return 0
    return train_and_report(args, ["ezrobot", "train", *args])


def train_and_report(overrides: List[str], command: List[str]) -> int:
    """Train the config composed from ``overrides`` and print its summary; on SIGINT / SIGTERM print where the
    checkpoint went and the ``command`` that resumes it.

    Returns:
        0, or 130 / 143 after SIGINT / SIGTERM.
    """
    try:
        summary = train(load_config(overrides))
    except TrainingInterrupted as stop:
        print(f"ezrobot: {stop.signal_name} at {stop.env_steps} env steps: checkpoint written to "
              f"{stop.checkpoint}; resume with: {shlex.join(command)}", file=sys.stderr)
        return stop.exit_code
    print(json.dumps(summary))
    return 0
