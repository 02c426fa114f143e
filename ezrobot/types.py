"""Plain dataclasses that cross module boundaries (learner <- reanalyze <- replay, trainer <- selfplay).

Everything here is arrays or tensors and Python scalars, so the single-process loop can later be split into
Ray actors without changing interfaces. Shapes: B batch, K unroll steps, P policy width (|A| for discrete
actions, number of sampled actions for continuous ones), D action dimension, O observation shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import torch


@dataclass
class TrainBatch:
    """One learner batch with its targets, on the learner's device.

    Attributes:
        obs: ``[B, K+1, *O]`` observations at t..t+K (index 0 is the representation input, 1..K the
            consistency targets).
        actions: ``[B, K]`` int64 or ``[B, K, D]`` float actions taken at t..t+K-1.
        weights: ``[B]`` prioritized-replay importance weights.
        value_prefix: ``[B, K]`` value-prefix (or reward) targets for unroll steps 1..K.
        value: ``[B, K+1]`` value targets for steps 0..K.
        policy: ``[B, K+1, P]`` policy targets (probabilities).
        sampled_actions: ``[B, K+1, P, D]`` the actions the continuous policy targets refer to, or None.
        best_action: ``[B, K+1, D]`` the search's chosen action (continuous ``best`` loss), or None.
        obs_mask: ``[B, K+1]`` 1 where step t+k exists in the episode (its final observation included).
        policy_mask: ``[B, K+1]`` 1 where a policy target exists (a searched, non-final step).
        action_mask: ``[B, K]`` 1 where the action at t+k was really taken (unroll step k+1 is real).
        value_mask: ``[B, K+1]`` 1 where the value target is trained (existing steps, and absorbing steps
            past a termination).
        reward_mask: ``[B, K]`` 1 where the value-prefix target is trained (likewise).
        next_continues: ``[B]`` 0 where the first action ended the episode by termination, else 1 (the
            critic's one-step target bootstraps from t+1 only where it is 1), or None.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    weights: torch.Tensor
    value_prefix: torch.Tensor
    value: torch.Tensor
    policy: torch.Tensor
    obs_mask: torch.Tensor
    policy_mask: torch.Tensor
    action_mask: torch.Tensor
    value_mask: torch.Tensor
    reward_mask: torch.Tensor
    sampled_actions: Optional[torch.Tensor] = None
    best_action: Optional[torch.Tensor] = None
    next_continues: Optional[torch.Tensor] = None


@dataclass
class EpisodeStats:
    """Summary of one finished episode.

    Attributes:
        ret: Undiscounted return (the raw game score for Atari).
        length: Agent steps.
        env_steps: Simulator steps.
        terms: Per-episode sums of each reward term (``reward/<term>``).
        success: Task success at the end of the episode, or None when the task defines none.
    """

    ret: float
    length: int
    env_steps: int
    terms: Dict[str, float] = field(default_factory=dict)
    success: Optional[bool] = None


@dataclass
class ActOutput:
    """What the actor needs from the policy for E observations.

    Attributes:
        actions: ``[E]`` int64 or ``[E, D]`` float32.
        policy: ``[E, P]`` search policy target (visit distribution / improved policy).
        root_value: ``[E]`` search root value.
        sampled_actions: ``[E, P, D]`` continuous candidate actions, or None.
    """

    actions: np.ndarray
    policy: np.ndarray
    root_value: np.ndarray
    sampled_actions: Optional[np.ndarray] = None
