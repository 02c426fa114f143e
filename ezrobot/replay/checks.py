"""Argument checks of the replay's public methods: each raises a ValueError naming the bad argument."""
from __future__ import annotations

import numpy as np


def check_env_ids(env_ids, num_envs: int) -> np.ndarray:
    """``int64 [E']`` distinct env ids in ``[0, num_envs)``."""
    ids = np.asarray(env_ids, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= num_envs):
        raise ValueError(f"env_ids {ids.tolist()} out of range [0, num_envs={num_envs})")
    if np.unique(ids).size != ids.size:
        raise ValueError(f"env_ids {ids.tolist()} contain duplicates")
    return ids


def check_positions(positions, capacity: int) -> np.ndarray:
    """``int64 [B]`` ring positions in ``[0, capacity)``."""
    pos = np.asarray(positions, dtype=np.int64).reshape(-1)
    if pos.size and (pos.min() < 0 or pos.max() >= capacity):
        raise ValueError(f"positions out of range [0, capacity={capacity}): {pos.min()}..{pos.max()}")
    return pos


def as_array(name: str, value, shape, dtype) -> np.ndarray:
    """``value`` as an array of ``shape`` and ``dtype``, or a ValueError naming it."""
    arr = np.asarray(value)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape}; expected {tuple(shape)}")
    return arr.astype(dtype, copy=False)


def check_actions(actions, e: int, spec, action_dim: int) -> np.ndarray:
    """``float32 [E', D]`` (continuous) or ``int64 [E']`` actions in ``[0, |A|)`` (discrete)."""
    if spec.action_type == "continuous":
        return as_array("actions", actions, (e, action_dim), np.float32)
    acts = as_array("actions", actions, (e,), np.int64)
    if acts.size and (acts.min() < 0 or acts.max() >= spec.num_actions):
        raise ValueError(f"actions {acts.tolist()} out of range [0, {spec.num_actions})")
    return acts


def newest_frames(name: str, obs, e: int, spec) -> np.ndarray:
    """Newest frame ``[E', *frame_shape]`` of stacked observations ``[E', *obs_shape]``."""
    obs = np.asarray(obs)
    if obs.shape != (e,) + tuple(spec.obs_shape):
        raise ValueError(f"{name} has shape {obs.shape}; expected {(e,) + tuple(spec.obs_shape)}")
    if spec.is_pixels:
        if obs.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8 pixels, got {obs.dtype}")
        return obs[:, obs.shape[1] - spec.frame_shape[0]:]
    return obs.astype(np.float32, copy=False)
