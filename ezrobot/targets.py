"""Pure target math on numpy arrays (no torch, no state): n-step returns and bootstrap indices, value-prefix
targets, EfficientZero's dynamic TD horizon, plain and EZ-V2 mixed value targets, visit-count policies.

:func:`build_targets` is the one entry point from a replay :class:`~ezrobot.replay.trajectory.Trajectory`
to the learner's value and value-prefix targets; the other functions are its steps.

Shapes: B batch, K unroll steps, J trajectory window (K + n), P policy width. Index k means step t+k.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from ezrobot.replay.trajectory import Trajectory

__all__ = ["TargetSettings", "Targets", "build_targets", "td_horizons", "nstep_window", "nstep_bootstrap",
           "value_prefix_targets", "dynamic_td_steps", "nstep_value_targets", "mixed_value_targets", "visit_policy_targets"]


@dataclass(frozen=True)
class TargetSettings:
    """What the targets depend on besides the data.

    Attributes:
        discount: γ per agent step.
        td_steps: n, the largest value horizon.
        dynamic_td: EfficientZero's off-policy-corrected horizon (ignored for ``mixed`` targets).
        td_horizon_T: T of that correction, in transitions.
        mixed: EZ-V2 mixed value targets (search values for old data, see :func:`mixed_value_targets`).
        mixed_value_t1: T1 of the mixed targets.
        mixed_value_t2: T2 of the mixed targets.
        use_value_prefix: The model predicts value prefixes (else immediate rewards).
        value_prefix_horizon: Steps between value-prefix resets.
    """

    discount: float
    td_steps: int
    dynamic_td: bool
    td_horizon_T: int
    mixed: bool
    mixed_value_t1: int
    mixed_value_t2: int
    use_value_prefix: bool
    value_prefix_horizon: int


@dataclass
class Targets:
    """The learner's value and reward targets for B trajectories.

    Attributes:
        value: ``float32 [B, K+1]`` value targets.
        value_prefix: ``float32 [B, K]`` value-prefix (or reward) targets of unroll steps 1..K.
        value_mask: ``bool [B, K+1]`` value targets that are trained (existing steps, and absorbing steps
            past a termination).
        reward_mask: ``bool [B, K]`` value-prefix targets that are trained (likewise).
        td_horizons: ``int64 [B]`` the value horizons used.
    """

    value: np.ndarray
    value_prefix: np.ndarray
    value_mask: np.ndarray
    reward_mask: np.ndarray
    td_horizons: np.ndarray


BootstrapValues = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(positions int64 [B, K+1], mask bool [B, K+1]) -> float32 [B, K+1]``: target-network values of the
stacked observations at replay ring ``positions`` where ``mask``, 0 elsewhere."""


def td_horizons(ages: np.ndarray, settings: TargetSettings) -> np.ndarray:
    """``int64 [B]`` value horizons: dynamic (:func:`dynamic_td_steps`) or ``td_steps`` throughout."""
    if not settings.dynamic_td or settings.mixed:
        return np.full(len(ages), settings.td_steps, np.int64)
    return dynamic_td_steps(ages, settings.td_steps, settings.td_horizon_T)


def nstep_window(traj: Trajectory, horizons: np.ndarray, discount: float
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`nstep_bootstrap` along a gathered trajectory window, bootstrap indices mapped to ring positions.

    Returns:
        ``(nstep_return float32 [B, K+1], bootstrap_positions int64 [B, K+1], bootstrap_discount float32
        [B, K+1])``: value target z_k = nstep_return + bootstrap_discount · V(obs at bootstrap_positions).
    """
    td_steps = traj.rewards.shape[1] - traj.action_mask.shape[1]
    horizons = np.asarray(horizons, np.int64)
    if horizons.size and (horizons.min() < 1 or horizons.max() > td_steps):
        raise ValueError(f"td_horizons must lie in [1, td_steps={td_steps}], got {horizons.min()}..{horizons.max()}")
    if not 0.0 < discount <= 1.0:
        raise ValueError(f"discount={discount!r} must be in (0, 1]")
    ret, boot_idx, boot_disc = nstep_bootstrap(traj.rewards, traj.last, horizons, discount, traj.obs_mask.shape[1],
                                               traj.terminated)
    return ret, np.take_along_axis(traj.window_positions, boot_idx, axis=1), boot_disc


def build_targets(traj: Trajectory, settings: TargetSettings, train_step: int, bootstrap_values: BootstrapValues,
                  search_values: Optional[np.ndarray] = None) -> Targets:
    """Value targets (n-step with the dynamic horizon, mixed with search values) and value-prefix targets.

    Args:
        traj: What ``Replay.gather`` returned.
        settings: See :class:`TargetSettings`.
        train_step: Current update count (for the mixed targets' T1).
        bootstrap_values: Target-network values at bootstrap positions (see :data:`BootstrapValues`).
        search_values: ``[B, K+1]`` search-based value estimates of the reanalysis searches (mixed targets;
            None: no search ran, plain n-step targets).
    """
    horizons = td_horizons(traj.ages, settings)
    ret, boot_pos, boot_disc = nstep_window(traj, horizons, settings.discount)
    values = bootstrap_values(boot_pos, boot_disc > 0)
    value = nstep_value_targets(ret, boot_disc, values, traj.obs_mask)
    if settings.mixed and search_values is not None:
        value = mixed_value_targets(value, search_values, traj.policy_mask, traj.ages, train_step,
                                    settings.mixed_value_t1, settings.mixed_value_t2)
    rewards = traj.rewards[:, :traj.action_mask.shape[1]]
    if settings.use_value_prefix:
        prefix = value_prefix_targets(rewards, settings.value_prefix_horizon)
    else:
        prefix = rewards
    absorbing = traj.terminated[:, None]
    return Targets(value=value, value_prefix=prefix, value_mask=traj.obs_mask | absorbing,
                   reward_mask=traj.action_mask | absorbing, td_horizons=horizons)


def nstep_bootstrap(rewards: np.ndarray, last: np.ndarray, horizons: np.ndarray, discount: float,
                    num_targets: int, last_terminated: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n-step returns and bootstrap points along stored trajectory windows.

    For k < num_targets and horizon l = horizons[b]: m = min(l, last[b] - k) steps are summed,
    ``ret[b, k] = Σ_{i<m} γ^i rewards[b, k+i]`` and the value bootstraps at index k+m with discount γ^m,
    or 0 when index k+m is the window's last index and the episode terminated there. For k > last[b] (past
    the episode end) the return and the discount are 0 and the bootstrap index is ``last[b]``.

    Args:
        rewards: ``[B, J]`` reward for the action at index j (0 where none was taken).
        last: ``int [B]`` index of the window's last stored position (the final position when the episode
            ended inside the window, else J or more).
        horizons: ``int [B]`` l >= 0; ``num_targets - 1 + max(l) <= J`` unless the episode ends earlier.
        discount: γ.
        num_targets: K + 1.
        last_terminated: ``bool [B]`` the position at ``last`` is a final position of a terminated episode.

    Returns:
        ``(ret float32 [B, K+1], bootstrap_index int64 [B, K+1], bootstrap_discount float32 [B, K+1])``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    b, window = rewards.shape
    last = np.asarray(last, dtype=np.int64).reshape(b, 1)
    horizons = np.asarray(horizons, dtype=np.int64).reshape(b, 1)
    if np.any(horizons < 0):
        raise ValueError(f"horizons must be >= 0, got min {horizons.min()}")
    k = np.arange(num_targets)[None, :]
    stop = np.minimum(k + horizons, last)
    past = k > last
    if np.any((stop > window) & ~past):
        raise ValueError(f"reward window J={window} is shorter than K + l = {int(stop.max())}")
    steps = np.where(past, 0, stop - k)
    offsets = np.arange(int(horizons.max(initial=0)))
    cols = np.minimum(k[..., None] + offsets, max(window - 1, 0))
    use = offsets[None, None, :] < steps[..., None]
    terms = np.where(use, rewards[np.arange(b)[:, None, None], cols] if window else 0.0, 0.0)
    ret = (terms * float(discount) ** offsets).sum(-1)
    boot_index = np.where(past, last, stop)
    no_boot = past | ((boot_index == last) & np.asarray(last_terminated, bool).reshape(b, 1))
    boot_discount = np.where(no_boot, 0.0, float(discount) ** steps)
    return ret.astype(np.float32), boot_index.astype(np.int64), boot_discount.astype(np.float32)


def value_prefix_targets(rewards: np.ndarray, horizon: int) -> np.ndarray:
    """Value-prefix targets: undiscounted reward sums since the last LSTM reset.

    The sum restarts at unroll steps 0, horizon, 2·horizon, ... counted from the root (EfficientZero's
    code), so ``out[:, i] = Σ_{j = horizon·⌊i/horizon⌋}^{i} rewards[:, j]``. horizon = 1 gives the rewards.

    Args:
        rewards: ``[B, K]`` rewards of unroll steps 1..K (0 past the episode end).
        horizon: Value-prefix horizon (LSTM reset interval) >= 1.

    Returns:
        ``float32 [B, K]`` targets for unroll steps 1..K.
    """
    if int(horizon) < 1:
        raise ValueError(f"value-prefix horizon={horizon!r} must be an integer >= 1")
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be [B, K], got shape {rewards.shape}")
    total = np.cumsum(rewards, axis=1)
    start = (np.arange(rewards.shape[1]) // int(horizon)) * int(horizon)
    before = np.concatenate([np.zeros((rewards.shape[0], 1)), total], axis=1)[:, start]
    return (total - before).astype(np.float32)


def dynamic_td_steps(ages: np.ndarray, td_steps: int, total_transitions: int, age_scale: float = 0.3) -> np.ndarray:
    """EfficientZero's off-policy correction: l = clip(td_steps - ⌊age / (age_scale · T)⌋, 1, td_steps).

    Args:
        ages: ``int [B]`` transitions collected since each sample was written (>= 0).
        td_steps: n, the largest horizon (>= 1).
        total_transitions: T, transitions of the whole run (> 0).
        age_scale: Fraction of T per horizon step (0.3 in the paper).

    Returns:
        ``int64 [B]`` horizons in [1, td_steps].
    """
    if int(td_steps) < 1:
        raise ValueError(f"td_steps={td_steps!r} must be >= 1")
    if not total_transitions > 0 or not age_scale > 0:
        raise ValueError(f"total_transitions={total_transitions!r} and age_scale={age_scale!r} must be > 0")
    ages = np.asarray(ages)
    if np.any(ages < 0):
        raise ValueError(f"ages must be >= 0, got min {ages.min()}")
    drop = np.floor(ages / (float(age_scale) * float(total_transitions))).astype(np.int64)
    return np.clip(int(td_steps) - drop, 1, int(td_steps)).astype(np.int64)


def nstep_value_targets(nstep_return: np.ndarray, bootstrap_discount: np.ndarray, bootstrap_values: np.ndarray,
                        obs_mask: np.ndarray) -> np.ndarray:
    """z = (nstep_return + bootstrap_discount · V(bootstrap_obs)) · obs_mask, all ``[B, K+1]``.

    Returns:
        ``float32 [B, K+1]`` value targets (0 past the episode end).
    """
    shape = np.shape(nstep_return)
    for name, arr in (("bootstrap_discount", bootstrap_discount), ("bootstrap_values", bootstrap_values),
                      ("obs_mask", obs_mask)):
        if np.shape(arr) != shape:
            raise ValueError(f"{name} has shape {np.shape(arr)}; expected {shape} like nstep_return")
    z = np.asarray(nstep_return, np.float64) + np.asarray(bootstrap_discount, np.float64) * bootstrap_values
    return np.where(np.asarray(obs_mask, bool), z, 0.0).astype(np.float32)


def mixed_value_targets(td_targets: np.ndarray, search_values: np.ndarray, policy_mask: np.ndarray,
                        ages: np.ndarray, train_step: int, td_only_steps: int, td_newest: int) -> np.ndarray:
    """EfficientZero-V2 mixed value targets.

    Plain n-step TD targets during the first ``td_only_steps`` (T1) updates and for samples among the
    newest ``td_newest`` (T2) transitions (age < T2); otherwise search-based value estimates (SVE: the mean
    return backed up through the reanalysis root) where a search exists (``policy_mask``). Final positions
    and steps past the end keep their TD target (0 after termination, the bootstrap after truncation).

    Args:
        td_targets: ``[B, K+1]`` n-step targets (``nstep_value_targets``).
        search_values: ``[B, K+1]`` SVE of the reanalysis searches at t+k.
        policy_mask: ``bool [B, K+1]`` a searched, non-final position.
        ages: ``int [B]`` transitions since each sample was written.
        train_step: Current update count.
        td_only_steps: T1.
        td_newest: T2.

    Returns:
        ``float32 [B, K+1]``.
    """
    td_targets = np.asarray(td_targets, np.float32)
    if np.shape(search_values) != td_targets.shape or np.shape(policy_mask) != td_targets.shape:
        raise ValueError(f"search_values {np.shape(search_values)} and policy_mask {np.shape(policy_mask)} "
                         f"must match td_targets {td_targets.shape}")
    ages = np.asarray(ages).reshape(-1)
    if ages.shape != td_targets.shape[:1]:
        raise ValueError(f"ages has shape {ages.shape}; expected ({td_targets.shape[0]},)")
    if train_step < td_only_steps:
        return td_targets.copy()
    use_sve = (ages >= td_newest)[:, None] & np.asarray(policy_mask, bool)
    return np.where(use_sve, np.asarray(search_values, np.float32), td_targets)


def visit_policy_targets(visit_counts: np.ndarray, policy_mask: np.ndarray) -> np.ndarray:
    """Normalised visit counts ``[..., P]`` as policy targets; 0 rows where masked or unvisited.

    Args:
        visit_counts: ``[..., P]`` non-negative counts.
        policy_mask: ``bool [...]``.

    Returns:
        ``float32 [..., P]`` rows summing to 1 where ``policy_mask`` and any visit, else 0.
    """
    counts = np.asarray(visit_counts, np.float64)
    if np.any(counts < 0):
        raise ValueError("visit_counts must be >= 0")
    if np.shape(policy_mask) != counts.shape[:-1]:
        raise ValueError(f"policy_mask has shape {np.shape(policy_mask)}; expected {counts.shape[:-1]}")
    total = counts.sum(-1, keepdims=True)
    keep = np.asarray(policy_mask, bool)[..., None] & (total > 0)
    return np.where(keep, counts / np.where(total > 0, total, 1.0), 0.0).astype(np.float32)
