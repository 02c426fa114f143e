"""Reanalyze: turn sampled replay positions into a learner batch with fresh targets.

Implementation details (EfficientZero §1, EZ-V2 §3 of ../shared/REFERENCE.md):
1. Value targets z_t = Σ_{i<l} γ^i r_{t+i} + γ^l V_target(o_{t+l}) from the target network, with the
   off-policy-corrected horizon l = clip(n − ⌊age / (0.3 T)⌋, 1, n) when ``train.dynamic_td`` is on.
2. Policy targets: a fresh search with the target network (root noise on, as in the paper) for the first
   ``reanalyze_ratio`` of the batch at every step t..t+K; the stored self-play targets for the rest.
3. ``train.value_target=mixed`` (EZ-V2): the search-based value estimate (mean backed-up return of the
   reanalysis root) replaces the TD target for data older than T2 after T1 updates (dynamic horizon off).
4. Value-prefix targets: undiscounted reward sums since the last LSTM reset (every horizon steps).
5. Past the end of an episode that terminated, states are absorbing: value and reward targets 0 are
   trained (as in EfficientZero's code); past a truncation (time limit) they are masked.
6. Bootstrap values are cached per replay position (``train.cache_bootstrap_values``) until the target
   network is refreshed or the position's stacked observation changes: between two target refreshes the
   target network is fixed (eval mode), so a recomputation would give the same number.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch

from ezrobot import targets
from ezrobot.learner import bf16_autocast
from ezrobot.types import TrainBatch


class BootstrapValueCache:
    """Target-network values per replay ring position: ``values [capacity]`` float32, valid where the stored
    ``keys [capacity]`` equal the replay's current content key (-1: empty). Plain arrays, so a reanalysis
    actor can hold one beside its replay shard."""

    def __init__(self, capacity: int):
        self.values = np.zeros(capacity, np.float32)
        self.keys = np.full(capacity, -1, np.int64)

    def valid(self, positions: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """``bool [N]``: a cached value exists for the current content of each position."""
        return self.keys[positions] == keys

    def store(self, positions: np.ndarray, keys: np.ndarray, values: np.ndarray) -> None:
        """Remember ``values [N]`` of distinct ``positions [N]`` with content ``keys [N]``."""
        self.values[positions], self.keys[positions] = values, keys

    def clear(self) -> None:
        """Forget every value (the target network changed)."""
        self.keys.fill(-1)


class Reanalyzer:
    """Builds :class:`TrainBatch` objects from replay positions.

    Args:
        cfg: Run configuration.
        spec: The environment's ``EnvSpec``.
        derived: ``config.Derived`` values (T of the off-policy horizon).
        replay: The ``Replay``.
        target_model: Target network (kept in eval mode).
        agent: ``SearchAgent`` used for the reanalysis searches.
        device: Learner device.
    """

    def __init__(self, cfg, spec, derived, replay, target_model, agent, device: torch.device):
        self.cfg, self.spec, self.derived = cfg, spec, derived
        self.replay, self.target_model, self.agent, self.device = replay, target_model, agent, device
        self.continuous = spec.action_type == "continuous"
        self.cache = BootstrapValueCache(replay.capacity) if cfg.train.cache_bootstrap_values else None
        self._lookups = self._hits = 0

    def target_changed(self) -> None:
        """Call after new weights are loaded into the target network: every cached value is stale."""
        if self.cache is not None:
            self.cache.clear()

    def _tensor(self, x: np.ndarray, dtype=None) -> torch.Tensor:
        return torch.as_tensor(x).to(self.device, dtype=dtype, non_blocking=True)

    @torch.no_grad()
    def _infer_values(self, obs: np.ndarray) -> np.ndarray:
        """Target-network values ``[N]`` of observations ``[N, *O]``."""
        with bf16_autocast(self.device, self.cfg.train.bf16):  # as the learner's forward passes
            _, logits, _ = self.target_model.initial_inference(self._tensor(obs))
        return self.target_model.value_support.logits_to_scalar(logits).float().cpu().numpy()

    def _values(self, obs: np.ndarray, positions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Target-network values of ``obs [B, K+1, *O]`` (at ring ``positions [B, K+1]``) where ``mask``;
        0 elsewhere. With the cache on, only positions without a current cached value are run through the
        network, each once."""
        out = np.zeros(mask.shape, np.float32)
        if not mask.any():
            return out
        if self.cache is None:
            out[mask] = self._infer_values(obs[mask])
            return out
        pos = positions[mask]
        keys = self.replay.content_keys(pos)
        miss = ~self.cache.valid(pos, keys)
        self._lookups += pos.size
        self._hits += pos.size - int(miss.sum())
        if miss.any():
            flat = np.flatnonzero(mask)[miss]
            uniq, first = np.unique(pos[miss], return_index=True)
            stacked = obs.reshape(-1, *obs.shape[2:])[flat[first]]
            self.cache.store(uniq, keys[miss][first], self._infer_values(stacked))
        out[mask] = self.cache.values[pos]
        return out

    def _horizons(self, positions: np.ndarray) -> np.ndarray:
        t = self.cfg.train
        if not t.dynamic_td or t.value_target == "mixed":
            return np.full(len(positions), t.td_steps, np.int64)
        return targets.dynamic_td_steps(self.replay.ages(positions), t.td_steps, self.derived.td_horizon_T)

    def _research(self, sample, rows: int, rng: np.random.Generator) -> Dict[str, np.ndarray]:
        """Search the first ``rows`` samples at every searched step; returns targets for those entries."""
        mask = sample.policy_mask[:rows]
        obs = sample.obs[:rows][mask]
        out = self.agent.search(self.target_model, obs, rng, train=True)
        return {"mask": mask, "policy": out.policy, "sve": out.sve_value,
                "sampled": out.sampled_actions, "action": out.action}

    @torch.no_grad()
    def make_batch(self, positions: np.ndarray, weights: np.ndarray, train_step: int,
                   rng: np.random.Generator) -> Tuple[TrainBatch, Dict[str, float]]:
        """Gather trajectories at ``positions`` and compute every target.

        Returns:
            ``(batch, metrics)``.
        """
        cfg = self.cfg.train
        sample = self.replay.gather(positions, self._horizons(positions), self.spec.discount, rng)
        boot_values = self._values(sample.bootstrap_obs, sample.bootstrap_positions, sample.bootstrap_discount > 0)
        value = targets.nstep_value_targets(sample.nstep_return, sample.bootstrap_discount, boot_values,
                                            sample.obs_mask)
        policy = sample.policies.astype(np.float32)
        sampled = sample.sampled_actions
        b = len(positions)
        rows = b if cfg.value_target == "mixed" else int(round(b * cfg.reanalyze_ratio))
        best = None
        if self.continuous:
            best = np.take_along_axis(sampled, policy.argmax(-1)[..., None, None], axis=2)[:, :, 0]
        if rows > 0 and sample.policy_mask[:rows].any():
            fresh = self._research(sample, rows, rng)
            m = fresh["mask"]
            sub_policy = policy[:rows]
            sub_policy[m] = fresh["policy"]
            if self.continuous:
                sampled[:rows][m] = fresh["sampled"]
                best[:rows][m] = fresh["action"]
            if cfg.value_target == "mixed":
                sve = np.zeros_like(value)
                sve[:rows][m] = fresh["sve"]
                value = targets.mixed_value_targets(value, sve, sample.policy_mask, sample.ages, train_step,
                                                    cfg.mixed_value_t1, cfg.mixed_value_t2)
        if self.target_model.use_value_prefix:
            prefix = targets.value_prefix_targets(sample.rewards, self.cfg.search.value_prefix_horizon)
        else:
            prefix = sample.rewards
        absorbing = sample.terminated[:, None]
        value_mask = sample.obs_mask | absorbing
        reward_mask = sample.action_mask | absorbing
        batch = TrainBatch(
            obs=self._tensor(sample.obs), actions=self._tensor(sample.actions),
            weights=self._tensor(weights, torch.float32), value_prefix=self._tensor(prefix, torch.float32),
            value=self._tensor(value, torch.float32), policy=self._tensor(policy, torch.float32),
            obs_mask=self._tensor(sample.obs_mask, torch.float32),
            policy_mask=self._tensor(sample.policy_mask, torch.float32),
            action_mask=self._tensor(sample.action_mask, torch.float32),
            value_mask=self._tensor(value_mask, torch.float32),
            reward_mask=self._tensor(reward_mask, torch.float32),
            sampled_actions=None if sampled is None else self._tensor(sampled, torch.float32),
            best_action=None if best is None else self._tensor(best, torch.float32))
        metrics = {"reanalyze/value_target_mean": float(value[sample.obs_mask].mean()),
                   "reanalyze/td_horizon_mean": float(sample.td_horizons.mean())}
        if self.cache is not None:
            metrics["reanalyze/value_cache_hit_rate"] = self._hits / max(1, self._lookups)
        return batch, metrics
