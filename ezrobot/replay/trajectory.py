"""What :meth:`ezrobot.replay.buffer.Replay.gather` returns: raw trajectory slices, no return arithmetic
(the value, value-prefix and n-step targets are built from them by :func:`ezrobot.targets.build_targets`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Trajectory:
    """Stored data along B trajectory windows (numpy arrays). Shapes: B batch, K unroll steps, n the replay's
    ``td_steps``, P policy width, D action dimension, O observation shape (stacked for pixels). Index j means
    position t+j of the sample's episode.

    Attributes:
        obs: ``[B, K+1, *O]`` observations at t..t+K, frames stacked; past the episode end the final one.
        actions: ``[B, K]`` int64 or ``[B, K, D]`` float32 taken at t..t+K-1; random valid actions where
            ``action_mask`` is 0.
        rewards: ``float32 [B, K+n]`` rewards for the actions at t..t+K+n-1 (0 where none was taken); the
            first K are the unroll steps' rewards.
        obs_mask: ``bool [B, K+1]`` position t+k exists (the final position included).
        policy_mask: ``bool [B, K+1]`` t+k is a non-final position with a stored search policy.
        action_mask: ``bool [B, K]`` the action at t+k was really taken.
        policies: ``[B, K+1, P]`` self-play search policies (0 where ``policy_mask`` is 0).
        sampled_actions: ``[B, K+1, P, D]`` the candidates those policies refer to (continuous), or None.
        root_values: ``[B, K+1]`` self-play root values (0 where ``policy_mask`` is 0).
        ages: ``int64 [B]`` insertions since position t was written.
        positions: ``int64 [B, K+1]`` ring positions of t..t+K (-1 past the end).
        window_positions: ``int64 [B, K+n+1]`` ring positions of t..t+K+n, the last stored one repeated past
            it (where values bootstrap from).
        last: ``int64 [B]`` window index of the last stored position (the final position when the episode
            ended inside the window, else K+n).
        terminated: ``bool [B]`` the position at ``last`` is the final position of an episode that ended by
            termination (steps past it are absorbing: value 0, reward 0), as opposed to a truncation or no
            end within the window.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    obs_mask: np.ndarray
    policy_mask: np.ndarray
    action_mask: np.ndarray
    policies: np.ndarray
    sampled_actions: Optional[np.ndarray]
    root_values: np.ndarray
    ages: np.ndarray
    positions: np.ndarray
    window_positions: np.ndarray
    last: np.ndarray
    terminated: np.ndarray
