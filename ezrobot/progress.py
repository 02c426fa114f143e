"""Training progress on stderr: a tqdm bar on a terminal; plain lines (one per interval, no ``\\r``) when
stderr is a file or a pipe, so that logs stay readable."""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

PLAIN_INTERVAL_S = 30.0
"""Seconds between plain progress lines (a line is also printed after each evaluation)."""


class Progress:
    """Shows env steps, updates, updates/s and the last evaluation return.

    Args:
        total: Env-step budget.
        initial: Env steps already taken (a resumed run).
        resumed: Label the output as a resumed run.
        stream: Where to write (default ``sys.stderr``); a TTY gets a bar, anything else plain lines.
        interval_s: Seconds between plain lines.
    """

    def __init__(self, total: int, initial: int, resumed: bool, stream: Optional[TextIO] = None,
                 interval_s: float = PLAIN_INTERVAL_S):
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.label, self.interval_s = total, "resumed" if resumed else "train", interval_s
        self.t0, self.u0, self.last_line = time.perf_counter(), None, time.perf_counter()
        self.bar = None
        isatty = getattr(self.stream, "isatty", None)
        if callable(isatty) and isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="env step", dynamic_ncols=True, desc=self.label,
                            mininterval=1.0, file=self.stream)

    def _postfix(self, updates: int, last_eval: Optional[float]) -> str:
        if self.u0 is None:
            self.u0 = updates
        rate = (updates - self.u0) / max(1e-6, time.perf_counter() - self.t0)
        last = "-" if last_eval is None else f"{last_eval:.1f}"
        return f"upd {updates} ({rate:.1f}/s) eval {last}"

    def tick(self, env_steps: int, updates: int, last_eval: Optional[float], force: bool = False) -> None:
        """Refresh the bar, or print a plain line when ``interval_s`` passed (or ``force``)."""
        postfix = self._postfix(updates, last_eval)
        if self.bar is not None:
            self.bar.n = env_steps
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(0)
            return
        now = time.perf_counter()
        if force or now - self.last_line >= self.interval_s:
            self.last_line = now
            print(f"ezrobot: {self.label} {env_steps}/{self.total} env steps, {postfix}", file=self.stream,
                  flush=True)

    def close(self) -> None:
        """Close the bar (plain output needs nothing)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
