"""Atomic checkpoints: each one is a directory written under a temporary name and renamed into place,
then the ``latest`` pointer file is replaced atomically. A crash at any point leaves the previous complete
checkpoint usable; incomplete temporary directories are removed on the next save."""
from __future__ import annotations

import os
import shutil
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

CHECKPOINT_DIR = "checkpoints"
_LATEST = "latest"


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


def latest_checkpoint(run_dir: str) -> Optional[str]:
    """Path of the newest complete checkpoint, or None."""
    root = os.path.join(run_dir, CHECKPOINT_DIR)
    pointer = os.path.join(root, _LATEST)
    if os.path.exists(pointer):
        with open(pointer) as f:
            path = os.path.join(root, f.read().strip())
        if os.path.exists(os.path.join(path, "state.pt")):
            return path
    if not os.path.isdir(root):
        return None
    done = sorted(n for n in os.listdir(root)
                  if n.startswith("step_") and os.path.exists(os.path.join(root, n, "state.pt")))
    return os.path.join(root, done[-1]) if done else None


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
