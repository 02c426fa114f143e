"""``ezrobot train [key=value ...]``: compose the config and train (resuming when the run directory has one)."""
from __future__ import annotations

import json
from typing import List

from ezrobot.hydra_config import load_config, schema_help
from ezrobot.runs import train


def main(args: List[str]) -> int:
    """Print ``--help`` (every config field with its default and docstring) or train; prints the summary."""
    if any(a in ("-h", "--help") for a in args):
        print("usage: ezrobot train [key=value ...]\n\nconfig fields (defaults of the schema; presets "
              "override them):\n" + schema_help())
        return 0
    summary = train(load_config(args))
    print(json.dumps(summary))
    return 0
