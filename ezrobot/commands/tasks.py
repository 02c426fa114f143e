"""``ezrobot tasks list [--json] [--tag T]``: show the registered reward-shaped tasks."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ezrobot tasks", description="Registered reward-shaped tasks.")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("list", help="list tasks: name, tags, observation and action dims, reward terms")
    show.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    show.add_argument("--tag", default=None, help="only tasks carrying this tag (e.g. robot, reach)")
    return parser


def format_table(rows: List[dict]) -> str:
    """Aligned text table of task rows (the ``--json`` objects)."""
    header = ["name", "tags", "obs", "action_dim", "reward_terms", "success"]
    table = [header] + [[r["name"], ",".join(r["tags"]), str(r["obs"]), str(r["action_dim"]),
                         ",".join(r["reward_terms"]), "yes" if r["has_success"] else "no"] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs ``ezrobot tasks``; returns the exit status (0 ok, 2 usage or task error)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from ezrobot import tasks

    try:
        rows = [info.to_json() for info in tasks.list_tasks(args.tag)]
    except tasks.TaskError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.tag is not None and not rows:
        known = sorted({t for info in tasks.list_tasks() for t in info.tags})
        print(f"error: no task carries tag {args.tag!r}; tags in use: {', '.join(known)}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
