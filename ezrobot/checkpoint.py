"""Atomic checkpoints: each one is a directory written under a temporary name and renamed into place,
then the ``latest`` pointer file is replaced atomically. A crash at any point leaves the previous complete
checkpoint usable; incomplete temporary directories are removed on the next save. Each checkpoint holds a
``manifest.json`` (size and sha256 of every payload file, written after them); :func:`find_checkpoint`
skips damaged checkpoints (a truncated or altered file) and returns the newest intact one."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

CHECKPOINT_DIR = "checkpoints"
_LATEST = "latest"
MANIFEST = "manifest.json"


class CheckpointError(ValueError):
    """No usable checkpoint where one is needed (one line naming the checkpoint and what is wrong)."""


def _fsync_file(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _write_text_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(run_dir: str, step: int, state: Dict[str, Any],
                    replay_state: Optional[Dict[str, np.ndarray]] = None, keep: int = 2) -> str:
    """Write ``state`` (torch-serialisable) and ``replay_state`` (arrays) as checkpoint ``step``.

    Args:
        run_dir: Run directory; checkpoints go to ``<run_dir>/checkpoints/step_<step>``.
        step: Env-step counter used as the checkpoint's name.
        state: Model/optimizer/counters/RNG bundle for ``torch.save``.
        replay_state: Flat dict of numpy arrays (or scalars) for ``np.savez``; None to skip.
        keep: Number of complete checkpoints to keep.

    Returns:
        The path of the new checkpoint directory.
    """
    root = os.path.join(run_dir, CHECKPOINT_DIR)
    os.makedirs(root, exist_ok=True)
    for name in os.listdir(root):
        if name.startswith(".tmp-"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    tmp = os.path.join(root, f".tmp-{step}-{os.getpid()}")
    os.makedirs(tmp)
    torch.save(state, os.path.join(tmp, "state.pt"))
    _fsync_file(os.path.join(tmp, "state.pt"))
    if replay_state is not None:
        with open(os.path.join(tmp, "replay.npz"), "wb") as f:
            np.savez(f, **replay_state)
            f.flush()
            os.fsync(f.fileno())
    payload = ["state.pt"] + (["replay.npz"] if replay_state is not None else [])
    manifest = {name: {"bytes": os.path.getsize(os.path.join(tmp, name)),
                       "sha256": file_sha256(os.path.join(tmp, name))} for name in payload}
    _write_text_atomic(os.path.join(tmp, MANIFEST), json.dumps(manifest, indent=1))
    final = os.path.join(root, f"step_{step:010d}")
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_text_atomic(os.path.join(root, _LATEST), os.path.basename(final))
    _prune(root, keep, current=os.path.basename(final))
    return final


def _prune(root: str, keep: int, current: str) -> None:
    done = sorted(n for n in os.listdir(root) if n.startswith("step_"))
    for name in done[:-keep] if keep > 0 else []:
        if name != current:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def file_sha256(path: str) -> str:
    """Hex sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_checkpoint(path: str, files: Optional[Sequence[str]] = None) -> Optional[str]:
    """What is wrong with checkpoint ``path`` (``None`` when intact).

    Args:
        path: A checkpoint directory.
        files: Payload files to verify (default: all the manifest lists). Checkpoints written before
            manifests existed are accepted when their ``state.pt`` exists.
    """
    if not os.path.exists(os.path.join(path, "state.pt")):
        return "no state.pt"
    manifest_path = os.path.join(path, MANIFEST)
    if not os.path.exists(manifest_path):
        return None
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as err:
        return f"unreadable {MANIFEST} ({err})"
    for name, want in manifest.items():
        if files is not None and name not in files:
            continue
        full = os.path.join(path, name)
        if not os.path.exists(full):
            return f"{name} is missing"
        size = os.path.getsize(full)
        if size != want["bytes"]:
            return f"{name} has {size} bytes, {want['bytes']} were written"
        if file_sha256(full) != want["sha256"]:
            return f"{name} does not match its sha256"
    return None


def _candidates(run_dir: str) -> List[str]:
    """Checkpoint directories, newest first (the ``latest`` pointer's target leads)."""
    root = os.path.join(run_dir, CHECKPOINT_DIR)
    if not os.path.isdir(root):
        return []
    names = sorted((n for n in os.listdir(root) if n.startswith("step_")), reverse=True)
    pointer = os.path.join(root, _LATEST)
    if os.path.exists(pointer):
        with open(pointer) as f:
            target = f.read().strip()
        if target in names:
            names.remove(target)
            names.insert(0, target)
    return [os.path.join(root, n) for n in names]


def find_checkpoint(run_dir: str, files: Optional[Sequence[str]] = None) -> Tuple[Optional[str], List[str]]:
    """The newest intact checkpoint of ``run_dir`` and the damaged ones newer than it.

    Args:
        run_dir: Run directory.
        files: Payload files that must be intact (see :func:`check_checkpoint`).

    Returns:
        ``(path or None, ["<checkpoint dir>: <what is wrong>", ...])``.
    """
    damaged = []
    for path in _candidates(run_dir):
        problem = check_checkpoint(path, files)
        if problem is None:
            return path, damaged
        damaged.append(f"{path}: {problem}")
    return None, damaged


def damaged_message(damaged: List[str], used: Optional[str]) -> str:
    """One line reporting damaged checkpoints and the one used instead."""
    more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
    tail = f"using {used}" if used else "no intact checkpoint is left"
    return f"ezrobot: warning: checkpoint {damaged[0]}{more}; {tail}"


def newest_intact(run_dir: str, files: Sequence[str] = ("state.pt",)) -> str:
    """The newest checkpoint of ``run_dir`` whose ``files`` are intact; damaged newer ones are reported in one
    line on stderr.

    Raises:
        CheckpointError: the run directory has no checkpoint, or none intact.
    """
    ckpt, damaged = find_checkpoint(run_dir, files=files)
    if damaged and ckpt is not None:
        print(damaged_message(damaged, ckpt), file=sys.stderr)
    if ckpt is None:
        raise CheckpointError(f"run_dir {run_dir!r} has no intact checkpoint ({damaged[0]})" if damaged
                              else f"run_dir {run_dir!r} has no checkpoint yet")
    return ckpt


def latest_checkpoint(run_dir: str) -> Optional[str]:
    """Path of the newest checkpoint with a ``state.pt`` (not verified; see :func:`find_checkpoint`), or None."""
    for path in _candidates(run_dir):
        if os.path.exists(os.path.join(path, "state.pt")):
            return path
    return None


def load_checkpoint(path: str, map_location: str | torch.device = "cpu",
                    with_replay: bool = True) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """Load a checkpoint directory written by :func:`save_checkpoint`.

    Returns:
        ``(state, replay_state)``; 0-d arrays in the replay state come back as Python scalars.
    """
    state = torch.load(os.path.join(path, "state.pt"), map_location=map_location, weights_only=False)
    replay_state = None
    replay_path = os.path.join(path, "replay.npz")
    if with_replay and os.path.exists(replay_path):
        with np.load(replay_path, allow_pickle=False) as data:
            replay_state = {k: (data[k].item() if data[k].ndim == 0 else data[k]) for k in data.files}
    return state, replay_state


def load_model_weights(model: torch.nn.Module, weights: Dict[str, Any], path: str) -> None:
    """``model.load_state_dict(weights)`` with a one-line error when the checkpoint at ``path`` was written
    for another architecture (e.g. by an older ezrobot whose defaults built other layers).

    Raises:
        ConfigError: naming the checkpoint and the first missing / unexpected / mis-shaped parameters.
    """
    from ezrobot.config import ConfigError

    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shaped = [k for k in own if k in weights and tuple(own[k].shape) != tuple(weights[k].shape)]
    if missing or unexpected or shaped:
        parts = [f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shapes", shaped))
                 if keys]
        raise ConfigError(f"checkpoint {path!r} does not fit the model its config builds ({'; '.join(parts)}); "
                         "it was written for other model settings or by an older ezrobot (model.* fields "
                         "such as model.projection_norm must be set as they were when it was trained)")
    model.load_state_dict(weights)
