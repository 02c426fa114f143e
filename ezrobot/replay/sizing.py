"""Replay sizing before anything is allocated: the positions a run can fill, the bytes a ring of a given
capacity takes, the memory available, and re-sizing a saved replay state to another capacity (a resumed run
with a longer budget)."""
from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np

_PER_POSITION = 4 + 4 + 8 + 8 + 8 + 4 * 1 + 8 + 8 + 1 + 8
"""Bytes per position besides observation, action and policy: reward, root value, episode, step, insertion,
four flags, prev, next; the sampler's sampleable flag and float64 priority."""

_FILL = {"episode": -1, "insertion": -1, "prev": -1, "next": -1}
"""Values of never-written positions (other arrays start at zero / False)."""


def positions_needed(agent_steps: int, num_envs: int) -> int:
    """Positions a run of ``agent_steps`` (over all environments) can write: one per agent step plus one reset
    observation per episode (at most one episode ends per agent step), with room for a few restarts."""
    return 2 * int(agent_steps) + 4 * int(num_envs)


def estimate_nbytes(capacity: int, spec, policy_size: int, action_dim: int, state_size: int = 0) -> int:
    """Bytes a ``Replay`` of ``capacity`` positions holds once written (arrays, priorities and sum tree);
    ``state_size``: float64 physics-state entries kept per position (``R * S``, 0 when none are kept)."""
    frame = int(np.prod(spec.frame_shape)) * (1 if spec.is_pixels else 4)
    continuous = spec.action_type == "continuous"
    action = 4 * action_dim if continuous else 8
    policy = 4 * policy_size * (1 + (action_dim if continuous else 0))
    tree = 2 * 8 * (1 << max(0, (int(capacity) - 1).bit_length()))
    return int(capacity) * (frame + action + policy + 8 * int(state_size) + _PER_POSITION) + tree


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (``MemAvailable``; None where it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def resize_state(state: Dict[str, object], capacity: int, per_position: tuple) -> Dict[str, object]:
    """``state`` (a ``Replay.state_dict()``) moved to a ring of ``capacity`` positions (``per_position``: the
    storage arrays with one row per position; the sampler's arrays are added).

    Only a ring that never overwrote a position can move (its positions are 0..size-1 in insertion order).

    Raises:
        ValueError: the saved ring wrapped, or holds more positions than ``capacity``.
    """
    size, inserted = int(state["size"]), int(state["num_insertions"])
    if inserted != size or size > capacity:
        raise ValueError(f"the saved replay ({size} positions, {inserted} written) cannot move to capacity "
                         f"{capacity} (capacity, num_envs, obs or policy size differ?)")
    out = dict(state)
    for name in tuple(per_position) + ("sampleable", "priority"):
        old = np.asarray(state[name])
        new = np.full((capacity,) + old.shape[1:], _FILL.get(name, 0), old.dtype)
        new[:size] = old[:size]
        out[name] = new
    out["ptr"] = size % capacity
    return out
