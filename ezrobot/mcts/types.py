"""Inputs and outputs of the tree search (numpy arrays; latents never leave the model's device).

Shapes: B roots, A discrete actions, D action dimension, K root children (A for discrete spaces, the number
of sampled actions for continuous ones), P policy width (A logits, or 2·D mean / pre-softplus std params).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class RootInput:
    """What the initial inference gives the search. The root latent lives in slot 0 of the model's pool.

    Attributes:
        value: ``[B]`` float32 root value estimates (scalars, already decoded).
        policy: ``[B, P]`` float32: discrete logits ``[B, A]``, or continuous head params ``[B, 2D]`` (the
            first D give mu = 5 tanh(x / 5), the last D give sigma = softplus(x + 1) + 0.1).
        discount: Discount per agent step.
        continuous: Whether the action space is continuous.
        use_value_prefix: Whether the model predicts value prefixes (reset by its LSTM every
            ``SearchConfig.value_prefix_horizon`` depths); False: its reward output is the immediate reward
            and every node counts as reset. A property of the model, not a search setting.
    """

    value: np.ndarray  # [B] float32
    policy: np.ndarray  # [B, P] float32
    discount: float
    continuous: bool = False
    use_value_prefix: bool = True

    @property
    def batch_size(self) -> int:
        """B."""
        return int(self.value.shape[0])

    def validate(self) -> None:
        """Check shapes and values.

        Raises:
            ValueError: naming the bad field and what is allowed.
        """
        value, policy = np.asarray(self.value), np.asarray(self.policy)
        if value.ndim != 1 or value.shape[0] < 1:
            raise ValueError(f"RootInput.value must have shape [B] with B >= 1, got {value.shape}")
        if policy.ndim != 2 or policy.shape[0] != value.shape[0] or policy.shape[1] < 1:
            raise ValueError(f"RootInput.policy must have shape [B={value.shape[0]}, P>=1], got {policy.shape}")
        if self.continuous and policy.shape[1] % 2 != 0:
            raise ValueError(f"continuous RootInput.policy must have an even width 2*D, got {policy.shape[1]}")
        if not 0.0 < float(self.discount) <= 1.0:
            raise ValueError(f"RootInput.discount={self.discount!r} must be in (0, 1]")
        if not (np.isfinite(value).all() and np.isfinite(policy).all()):
            raise ValueError("RootInput.value and RootInput.policy must be finite")


@dataclass(frozen=True, slots=True)
class RecurrentOutput:
    """What ``recurrent_fn`` returns for the B new children (numpy float32, scalars already decoded).

    Attributes:
        value: ``[B]`` value estimates of the children.
        value_prefix: ``[B]`` value prefixes (or immediate rewards when the value prefix is off).
        policy: ``[B, P]`` policy logits / continuous head params of the children.
    """

    value: np.ndarray  # [B] float32
    value_prefix: np.ndarray  # [B] float32
    policy: np.ndarray  # [B, P] float32


@dataclass(frozen=True)
class SearchOutput:
    """Result of one batched search.

    Attributes:
        action: ``[B]`` int64 chosen discrete action, or ``[B, D]`` float32 chosen continuous action.
        action_index: ``[B]`` int64 index of the chosen root child (equals ``action`` for discrete spaces).
        visit_counts: ``[B, K]`` int32 root child visit counts (they sum to num_simulations).
        policy: ``[B, K]`` float32 policy target: normalised visit counts (pUCT) or the improved policy
            pi' = softmax(logits + sigma(completed Q)) (Gumbel).
        root_value: ``[B]`` float32 classic EfficientZero root value: the sum of backed-up returns divided by
            the root visit count, which starts at 1 (N + 1 in all).
        sve_value: ``[B]`` float32 search-based value estimate: the mean of the N returns backed up through
            the root.
        q_values: ``[B, K]`` float32 completed root Q values: r + discount * V(child) where visited, else the
            mixed value v_mix of the root.
        sampled_actions: ``[B, K, D]`` float32 root children's actions (continuous), else None.
        prior: ``[B, K]`` float32 root prior the search used (after noise / importance weighting).
        max_depth: ``[B]`` int32 depth of the deepest leaf reached (root 0).
        mean_depth: ``[B]`` float32 mean depth of the simulations' leaves.
    """

    action: np.ndarray
    action_index: np.ndarray
    visit_counts: np.ndarray
    policy: np.ndarray
    root_value: np.ndarray
    sve_value: np.ndarray
    q_values: np.ndarray
    sampled_actions: Optional[np.ndarray]
    prior: np.ndarray
    max_depth: np.ndarray
    mean_depth: np.ndarray
