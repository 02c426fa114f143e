"""Run-directory metrics: ``metrics.jsonl`` (one object per evaluation), the same as CSV, console lines
and optional TensorBoard scalars. Files are appended/rewritten so that a resumed run continues them."""
from __future__ import annotations

import csv
import json
import math
import os
from typing import Dict, List, Optional


def _clean(value):
    """JSON-safe scalar: numpy/torch scalars to Python, non-finite floats to None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLogger:
    """Append-only evaluation log for one run directory.

    Args:
        run_dir: The run directory; ``metrics.jsonl`` and ``metrics.csv`` live in it.
        tensorboard: Also write TensorBoard scalars under ``<run_dir>/tb`` (needs the extra).
    """

    def __init__(self, run_dir: str, tensorboard: bool = False):
        self.jsonl_path = os.path.join(run_dir, "metrics.jsonl")
        self.csv_path = os.path.join(run_dir, "metrics.csv")
        self.rows: List[Dict] = self._read_existing()
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ImportError("log.tensorboard=true needs `pip install ezrobot[tensorboard]`") from err
            self._tb = SummaryWriter(os.path.join(run_dir, "tb"))

    def _read_existing(self) -> List[Dict]:
        """Rows already logged; a last line cut short (a process killed while appending it) is dropped."""
        if not os.path.exists(self.jsonl_path):
            return []
        with open(self.jsonl_path) as f:
            lines = [line for line in f if line.strip()]
        if lines and not lines[-1].endswith("\n"):
            try:
                json.loads(lines[-1])
                lines[-1] += "\n"
            except ValueError:
                lines.pop()
            self._rewrite(lines)
        return [json.loads(line) for line in lines]

    def _rewrite(self, lines: List[str]) -> None:
        tmp = self.jsonl_path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(lines)
        os.replace(tmp, self.jsonl_path)

    def truncate_after(self, env_steps: int) -> None:
        """Drop rows logged after ``env_steps`` (evaluations newer than the checkpoint resumed from)."""
        keep = [r for r in self.rows if r.get("env_steps", 0) <= env_steps]
        if len(keep) != len(self.rows):
            self.rows = keep
            self._rewrite([json.dumps(r) + "\n" for r in keep])
            self._write_csv()

    def log(self, row: Dict) -> None:
        """Append one evaluation row to JSONL and rewrite the CSV (columns are the union of all keys)."""
        row = {k: _clean(v) for k, v in row.items()}
        self.rows.append(row)
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self._write_csv()
        if self._tb is not None:
            step = row.get("env_steps", 0)
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "env_steps":
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def _write_csv(self) -> None:
        keys: List[str] = []
        for row in self.rows:
            keys.extend(k for k in row if k not in keys)
        tmp = self.csv_path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.csv_path)

    def best(self, key: str = "eval_return_mean") -> Optional[Dict]:
        """The row with the highest ``key``, or None."""
        rows = [r for r in self.rows if r.get(key) is not None]
        return max(rows, key=lambda r: r[key]) if rows else None

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
