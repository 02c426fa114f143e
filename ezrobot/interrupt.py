"""Graceful stops: SIGINT / SIGTERM during training only set a flag; the trainer polls it between agent steps
(a safe point), writes an atomic checkpoint there and raises :class:`TrainingInterrupted`. Nothing is written
from inside a signal handler. A second signal while the checkpoint is being written aborts at once
(``KeyboardInterrupt``); the previous checkpoint stays intact because checkpoints are written atomically."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The flag the signal handlers set (``signum`` of the first stop signal, or None)."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None

    @property
    def requested(self) -> bool:
        """True once a stop signal arrived."""
        return self.signum is not None

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask the trainer to stop at its next safe point (what the handlers call; tests may call it)."""
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping without a checkpoint")
        self.signum = int(signum)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after writing a checkpoint.

    Attributes:
        signum: The signal received.
        checkpoint: Directory of the checkpoint written at the stop.
        env_steps: Env steps taken when it was written.
    """

    def __init__(self, signum: int, checkpoint: str, env_steps: int):
        self.signum, self.checkpoint, self.env_steps = int(signum), checkpoint, int(env_steps)
        super().__init__(f"interrupted by {self.signal_name} at {env_steps} env steps; checkpoint {checkpoint}")

    @property
    def signal_name(self) -> str:
        """``SIGINT`` / ``SIGTERM``."""
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell convention 128 + signal number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


@contextmanager
def catch_stop_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """While active, SIGINT and SIGTERM call ``stop.request`` instead of their default actions (main thread
    only: elsewhere signals cannot be caught, and the defaults stay). The previous handlers come back on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: stop.request(signum))
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
