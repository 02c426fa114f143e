"""Reanalyze: turn sampled replay positions into a learner batch with fresh targets.

Implementation details (EfficientZero §1, EZ-V2 §3 of docs/REFERENCES.md); the target arithmetic is
``ezrobot.targets.build_targets``:
1. Value targets z_t = Σ_{i<l} γ^i r_{t+i} + γ^l V_target(o_{t+l}) from the target network, with the
   off-policy-corrected horizon l = clip(n − ⌊age / (0.3 T)⌋, 1, n) when ``train.dynamic_td`` is on.
2. Policy targets: a fresh search with the target network (root noise on, as in the paper) for the first
   ``reanalyze_ratio`` of the batch at every step t..t+K (``reanalyze_simulations`` each); the stored
   self-play targets for the rest, or no policy loss there with ``policy_from_reanalysis_only``.
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
from ezrobot.agent import SearchAgent
from ezrobot.config import Config, Derived
from ezrobot.envs.spec import EnvSpec
from ezrobot.lookahead import one_step_search
from ezrobot.nets import EfficientZeroNet
from ezrobot.precision import bf16_autocast
from ezrobot.replay.buffer import Replay
from ezrobot.replay.trajectory import Trajectory
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

    def __init__(self, cfg: Config, spec: EnvSpec, derived: Derived, replay: Replay, target_model: EfficientZeroNet,
                 agent: SearchAgent, device: torch.device):
        self.cfg, self.spec, self.derived = cfg, spec, derived
        self.replay, self.target_model, self.agent, self.device = replay, target_model, agent, device
        self.continuous = spec.action_type == "continuous"
        self.cache = BootstrapValueCache(replay.capacity) if cfg.train.cache_bootstrap_values else None
        t = cfg.train
        self.settings = targets.TargetSettings(
            discount=spec.discount, td_steps=t.td_steps, dynamic_td=t.dynamic_td, td_horizon_T=derived.td_horizon_T,
            mixed=t.value_target == "mixed", mixed_value_t1=t.mixed_value_t1, mixed_value_t2=t.mixed_value_t2,
            use_value_prefix=bool(target_model.use_value_prefix),
            value_prefix_horizon=cfg.search.value_prefix_horizon)
        self._lookups = self._hits = 0

    def state_dict(self) -> Dict[str, object]:
        """The bootstrap-value cache and its hit counters (a resumed run then computes what it would have)."""
        state: Dict[str, object] = {"hits": self._hits, "lookups": self._lookups}
        if self.cache is not None:
            state.update(cache_values=self.cache.values.copy(), cache_keys=self.cache.keys.copy())
        return state

    def load_state_dict(self, state: Dict[str, object]) -> None:
        """Restore :meth:`state_dict` output (a cache of another size, from a run with another budget, is
        dropped: its values are recomputed)."""
        self._hits, self._lookups = int(state["hits"]), int(state["lookups"])
        if self.cache is not None and "cache_keys" in state and len(state["cache_keys"]) == len(self.cache.keys):
            self.cache.values[:], self.cache.keys[:] = state["cache_values"], state["cache_keys"]
        elif self.cache is not None:
            self.cache.clear()

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

    def bootstrap_values(self, positions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Target-network values of the stacked observations at ring ``positions [B, K+1]`` where ``mask``, 0
        elsewhere (the :data:`ezrobot.targets.BootstrapValues` of :func:`ezrobot.targets.build_targets`)."""
        return self._values(self.replay.stacked_obs(positions), positions, mask)

    def _research(self, sample: Trajectory, rows: int, rng: np.random.Generator) -> Dict[str, np.ndarray]:
        """Search the first ``rows`` samples at every searched step; returns targets for those entries."""
        mask = sample.policy_mask[:rows]
        obs = sample.obs[:rows][mask]
        if self.cfg.train.reanalyze_search in ("one_step", "critic"):
            with bf16_autocast(self.device, self.cfg.train.bf16):  # as the bootstrap values
                out = one_step_search(self.target_model, self._tensor(obs), self.cfg.search, self.agent.discount,
                                      rng, critic=self.cfg.train.reanalyze_search == "critic",
                                      target_importance=self.cfg.train.policy_loss in ("importance", "split"))
        else:
            sims = self.cfg.train.reanalyze_simulations or None
            out = self.agent.search(self.target_model, obs, rng, train=True, num_simulations=sims)
        return {"mask": mask, "policy": out.policy, "sve": out.sve_value,
                "sampled": out.sampled_actions, "action": out.action}

    @torch.no_grad()
    def make_batch(self, positions: np.ndarray, weights: np.ndarray, train_step: int,
                   rng: np.random.Generator) -> Tuple[TrainBatch, Dict[str, float]]:
        """Gather trajectories at ``positions``, re-search the policy targets and build every target.

        Returns:
            ``(batch, metrics)``.
        """
        cfg = self.cfg.train
        sample = self.replay.gather(positions, rng)
        policy = sample.policies.astype(np.float32)
        sampled = sample.sampled_actions
        b = len(positions)
        rows = b if cfg.value_target == "mixed" else int(round(b * cfg.reanalyze_ratio))
        best = None
        if self.continuous:
            best = np.take_along_axis(sampled, policy.argmax(-1)[..., None, None], axis=2)[:, :, 0]
        search_values = None
        if rows > 0 and sample.policy_mask[:rows].any():
            fresh = self._research(sample, rows, rng)
            m = fresh["mask"]
            sub_policy = policy[:rows]
            sub_policy[m] = fresh["policy"]
            if self.continuous:
                sampled[:rows][m] = fresh["sampled"]
                best[:rows][m] = fresh["action"]
            if self.settings.mixed:
                search_values = np.zeros(sample.obs_mask.shape, np.float32)
                search_values[:rows][m] = fresh["sve"]
        tg = targets.build_targets(sample, self.settings, train_step, self.bootstrap_values, search_values)
        policy_mask = sample.policy_mask.copy()
        if cfg.policy_from_reanalysis_only:
            policy_mask[rows:] = False
        batch = TrainBatch(
            obs=self._tensor(sample.obs), actions=self._tensor(sample.actions),
            weights=self._tensor(weights, torch.float32), value_prefix=self._tensor(tg.value_prefix, torch.float32),
            value=self._tensor(tg.value, torch.float32), policy=self._tensor(policy, torch.float32),
            obs_mask=self._tensor(sample.obs_mask, torch.float32),
            policy_mask=self._tensor(policy_mask, torch.float32),
            action_mask=self._tensor(sample.action_mask, torch.float32),
            value_mask=self._tensor(tg.value_mask, torch.float32),
            reward_mask=self._tensor(tg.reward_mask, torch.float32),
            sampled_actions=None if sampled is None else self._tensor(sampled, torch.float32),
            best_action=None if best is None else self._tensor(best, torch.float32),
            next_continues=self._tensor(~((sample.last == 1) & sample.terminated), torch.float32))
        metrics = {"reanalyze/value_target_mean": float(tg.value[sample.obs_mask].mean()),
                   "reanalyze/td_horizon_mean": float(tg.td_horizons.mean())}
        if self.cache is not None:
            metrics["reanalyze/value_cache_hit_rate"] = self._hits / max(1, self._lookups)
        return batch, metrics
