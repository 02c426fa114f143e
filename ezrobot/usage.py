"""Command-line usage errors and ``key=value`` argument parsing (the bottom of the command layer: it imports
nothing from ezrobot, so every module may raise :class:`UsageError`)."""
from __future__ import annotations

import difflib
import os
import re
import tempfile
from typing import Dict, Iterable, Optional, Sequence, Tuple


class UsageError(ValueError):
    """Bad command-line usage (one line; the CLI prints it and exits 2)."""


def suggest(value: str, allowed: Iterable[str]) -> str:
    """``" (did you mean X?)"`` for a close match, else an empty string."""
    close = difflib.get_close_matches(value, list(allowed), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_kv(args: Sequence[str], allowed: Dict[str, str]) -> Dict[str, str]:
    """Parse ``key=value`` arguments; ``allowed`` maps each key to a short description."""
    out: Dict[str, str] = {}
    for arg in args:
        if "=" not in arg:
            raise UsageError(f"argument {arg!r} must be key=value; allowed keys: {', '.join(allowed)}")
        key, value = arg.split("=", 1)
        if key not in allowed:
            raise UsageError(f"unknown argument {key!r}{suggest(key, allowed)}; allowed: {', '.join(allowed)}")
        out[key] = value
    return out


def parse_int(text: str, name: str, low: int = 1) -> int:
    """``text`` as an integer >= ``low``, or a UsageError naming ``name``."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} must be an integer >= {low}") from None
    if value < low:
        raise UsageError(f"{name}={text!r} must be an integer >= {low}")
    return value


def parse_positive_int(text: str, name: str) -> int:
    """``text`` as an integer > 0 (message: "must be a positive integer")."""
    try:
        n = int(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} must be a positive integer") from None
    if n <= 0:
        raise UsageError(f"{name}={text!r} must be a positive integer")
    return n


def parse_bool(text: str, name: str) -> bool:
    """``true|1|yes`` or ``false|0|no`` (any case), or a UsageError naming ``name``."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise UsageError(f"{name}={text!r} must be true or false")


def parse_size(text: str) -> Tuple[int, int]:
    """``HxW`` with both sides >= 16."""
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or min(int(match.group(1)), int(match.group(2))) < 16:
        raise UsageError(f"size={text!r} must be HxW with both sides >= 16, e.g. 240x320")
    return int(match.group(1)), int(match.group(2))


def unwritable_reason(path: str, kind: str) -> Optional[str]:
    """Why ``path`` cannot be written as a ``kind`` (``"file"`` or ``"directory"``), found before any work is
    done; None when it can. A file's directory must exist already; a missing directory may be created, so its
    nearest existing ancestor must be a writable directory. Writability is probed with a temporary file
    (permission bits alone miss read-only mounts and root)."""
    path = os.path.abspath(path)
    if kind == "file":
        if os.path.isdir(path):
            return "is a directory"
        probe = os.path.dirname(path)
        if not os.path.isdir(probe):
            return f"is in {probe}, which {'is not a directory' if os.path.exists(probe) else 'does not exist'}"
    else:
        if os.path.exists(path) and not os.path.isdir(path):
            return "names an existing file, not a directory"
        probe = path
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if not os.path.isdir(probe):
            return f"is inside {probe}, which is a file"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        return f"cannot be written: {probe} is not writable ({err.strerror})"
    return None
