"""Small pieces shared by the adapters: frame stacking, image conversion, action mapping, id matching."""
from __future__ import annotations

import difflib
from collections import deque
from typing import Iterable, List, Sequence

import numpy as np

from .spec import EnvError


def close_matches(name: str, candidates: Iterable[str], n: int = 5) -> List[str]:
    """Up to ``n`` candidates that look like ``name`` (case-insensitive difflib matching)."""
    by_lower = {}
    for cand in candidates:
        by_lower.setdefault(cand.lower(), cand)
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[h] for h in hits]


def suggestion(name: str, candidates: Iterable[str]) -> str:
    """A message tail: ``"; did you mean: a, b"`` or ``""`` when nothing is close."""
    hits = close_matches(name, candidates)
    return f"; did you mean: {', '.join(hits)}" if hits else ""


def to_chw(frame: np.ndarray, size: int | None, grayscale: bool) -> np.ndarray:
    """Converts one ``[H, W, 3]`` (or ``[H, W]``) uint8 frame to channels-first uint8.

    Args:
        frame: RGB image ``[H, W, 3]`` or grey image ``[H, W]``.
        size: Square output side (resized with area interpolation), or None to keep the size.
        grayscale: Convert RGB to one grey channel.

    Returns:
        uint8 ``[C, size, size]`` with C = 1 (grey) or 3 (RGB).
    """
    import cv2

    img = np.asarray(frame)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if size is not None and img.shape[:2] != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    if img.ndim == 3 and grayscale:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.ndim == 2:
        return np.ascontiguousarray(img[None])
    return np.ascontiguousarray(img.transpose(2, 0, 1))


class FrameStack:
    """Keeps the newest ``num_frames`` frames ``[C, H, W]`` and returns them stacked oldest first."""

    def __init__(self, num_frames: int):
        if num_frames < 1:
            raise EnvError(f"frame_stack={num_frames} is not allowed; it must be >= 1")
        self.num_frames = num_frames
        self._frames: deque = deque(maxlen=num_frames)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        """Fills the stack with copies of the first frame; returns ``[num_frames * C, H, W]``."""
        self._frames.clear()
        for _ in range(self.num_frames):
            self._frames.append(frame)
        return self.observation()

    def push(self, frame: np.ndarray) -> np.ndarray:
        """Appends a frame (dropping the oldest); returns ``[num_frames * C, H, W]``."""
        if not self._frames:
            raise EnvError("FrameStack.push() before reset(): call env.reset() first")
        self._frames.append(frame)
        return self.observation()

    def observation(self) -> np.ndarray:
        """The stacked frames ``[num_frames * C, H, W]`` uint8, oldest first."""
        return np.concatenate(list(self._frames), axis=0)


class ActionRescaler:
    """Maps agent actions in ``[-1, 1]^D`` affinely onto a box ``[low, high]`` (both ``[D]``)."""

    def __init__(self, low: Sequence[float], high: Sequence[float]):
        self.low = np.asarray(low, dtype=np.float64).reshape(-1)
        self.high = np.asarray(high, dtype=np.float64).reshape(-1)
        if self.low.shape != self.high.shape:
            raise EnvError(f"action bounds differ in shape: low {self.low.shape}, high {self.high.shape}")
        if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high))):
            raise EnvError("continuous actions need finite bounds to rescale [-1, 1] onto; "
                           f"got low={self.low.tolist()}, high={self.high.tolist()}")
        self.dim = int(self.low.shape[0])

    def __call__(self, action) -> np.ndarray:
        """Validates a ``[D]`` action, clips it to ``[-1, 1]`` and returns it in bound units (float64)."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (self.dim,):
            raise EnvError(f"action has shape {np.shape(action)}; expected ({self.dim},) in [-1, 1]")
        if not np.all(np.isfinite(a)):
            raise EnvError(f"action {a.tolist()} has non-finite values; expected finite values in [-1, 1]")
        a = np.clip(a, -1.0, 1.0)
        return self.low + (a + 1.0) * 0.5 * (self.high - self.low)


def discrete_action(action, num_actions: int) -> int:
    """Converts an int-like action and checks ``0 <= action < num_actions``."""
    try:
        a = int(np.asarray(action).reshape(()))
    except (TypeError, ValueError) as exc:
        raise EnvError(f"action {action!r} is not one integer; expected 0..{num_actions - 1}") from exc
    if not 0 <= a < num_actions:
        raise EnvError(f"action {a} is out of range; expected 0..{num_actions - 1}")
    return a
