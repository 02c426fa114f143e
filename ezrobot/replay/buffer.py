"""Flat prioritized replay: one ring of ``capacity`` positions shared by every environment.

A position holds one observation (newest frame for pixels) plus the action taken there, the reward for it,
the self-play search policy (+ sampled candidate actions) and root value. Episodes are linked by ``prev`` /
``next`` arrays, so E envs write interleaved steps without copies; an episode ends with a *final* position
(no action), ``terminated`` (no value after it) or ``truncated`` (bootstrap from it). Overwriting the oldest
position cuts links to it and withdraws positions whose frame stack needs it. A non-final position becomes
sampleable once ``unroll_steps + td_steps`` later positions exist or its episode ended, at the current max
priority (``ezrobot.sumtree.PrioritizedSampler``). ``gather`` uses numpy fancy indexing (loops over the
K + n steps, never over samples) and returns raw slices; the targets are ``ezrobot.targets.build_targets``.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ezrobot.replay.checks import as_array, check_actions, check_env_ids, check_positions, newest_frames
from ezrobot.replay.config import ReplayConfig
from ezrobot.replay.sizing import resize_state
from ezrobot.replay.trajectory import Trajectory
from ezrobot.sumtree import PrioritizedSampler

__all__ = ["Replay"]

_ARRAYS = ("obs", "action", "reward", "policy", "root_value", "episode", "step", "insertion", "is_final",
           "terminated", "truncated", "has_action", "prev", "next", "env_pos")
_SCALARS = ("ptr", "size", "num_insertions", "next_episode")


class Replay:
    """Flat prioritized ring buffer over transitions of ``num_envs`` interleaved environments.

    Args:
        cfg: ``ReplayConfig``.
        spec: The environments' ``EnvSpec``.
        num_envs: E, environments writing through ``start_episodes`` / ``add`` (ids 0..E-1).
        unroll_steps: K, unroll length that ``gather`` serves.
        td_steps: n, the largest value-target horizon that ``gather`` serves.
        policy_size: P, search-policy width: |A| (discrete) or sampled actions per root (continuous).
        action_dim: D for continuous spaces (defaults to ``spec.num_actions``; must equal it).
    """

    def __init__(self, cfg: ReplayConfig, spec, *, num_envs: int, unroll_steps: int, td_steps: int,
                 policy_size: int, action_dim: Optional[int] = None):
        ReplayConfig.validate(cfg)
        if spec.action_type not in ("discrete", "continuous"):
            raise ValueError(f"spec.action_type={spec.action_type!r}; allowed: discrete, continuous")
        self.continuous = spec.action_type == "continuous"
        self.action_dim = int(spec.num_actions if action_dim is None else action_dim)
        if self.continuous and self.action_dim != spec.num_actions:
            raise ValueError(f"action_dim={action_dim!r} must equal spec.num_actions={spec.num_actions}")
        if not self.continuous and policy_size != spec.num_actions:
            raise ValueError(f"policy_size={policy_size!r} must equal |A|={spec.num_actions} for discrete actions")
        for name, value, low in (("num_envs", num_envs, 1), ("unroll_steps", unroll_steps, 0),
                                 ("td_steps", td_steps, 1), ("policy_size", policy_size, 1)):
            if int(value) < low:
                raise ValueError(f"{name}={value!r} must be an integer >= {low}")
        if cfg.capacity < 2 * num_envs:
            raise ValueError(f"replay.capacity={cfg.capacity} must be >= 2 * num_envs = {2 * num_envs}")
        if not spec.is_pixels and spec.frame_stack != 1:
            raise ValueError(f"vector observations need frame_stack=1, got {spec.frame_stack}")
        self.cfg, self.spec = cfg, spec
        self.capacity, self.num_envs = int(cfg.capacity), int(num_envs)
        self.unroll_steps, self.td_steps, self.policy_size = int(unroll_steps), int(td_steps), int(policy_size)
        self.stack = spec.frame_stack if spec.is_pixels else 1
        self.frame_shape = tuple(spec.frame_shape)
        n = self.capacity
        a_shape = (n, self.action_dim) if self.continuous else (n,)
        self._obs = np.zeros((n,) + self.frame_shape, np.uint8 if spec.is_pixels else np.float32)
        self._action = np.zeros(a_shape, np.float32 if self.continuous else np.int64)
        self._reward = np.zeros(n, np.float32)
        self._policy = np.zeros((n, self.policy_size), np.float32)
        self._sampled_actions = (np.zeros((n, self.policy_size, self.action_dim), np.float32)
                                 if self.continuous else None)
        self._root_value = np.zeros(n, np.float32)
        self.state_shape = tuple(spec.physics_state_shape) if cfg.store_physics_states else ()
        self._physics_states = np.full((n,) + self.state_shape, np.nan) if self.state_shape else None
        self._episode, self._step = np.full(n, -1, np.int64), np.zeros(n, np.int64)
        self._insertion = np.full(n, -1, np.int64)
        self._is_final, self._terminated = np.zeros(n, bool), np.zeros(n, bool)
        self._truncated, self._has_action = np.zeros(n, bool), np.zeros(n, bool)
        self._prev, self._next = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
        self._env_pos = np.full(self.num_envs, -1, np.int64)
        self._prio = PrioritizedSampler(n, cfg.alpha, cfg.prioritized, cfg.priority_eps)
        self._ptr = self._size = self._num_insertions = self._next_episode = 0

    # ------------------------------------------------------------------------------------ properties
    def __len__(self) -> int:
        """Positions (transitions) currently stored."""
        return self._size

    @property
    def num_insertions(self) -> int:
        """Positions written since the buffer was created (the age clock)."""
        return self._num_insertions

    @property
    def num_sampleable(self) -> int:
        """Positions that ``sample`` can return now."""
        return self._prio.count

    @property
    def nbytes(self) -> int:
        """Bytes held by the storage arrays, the priorities and the sum tree."""
        arrays = [getattr(self, "_" + name) for name in _ARRAYS] + [self._sampled_actions, self._physics_states]
        return int(sum(a.nbytes for a in arrays if a is not None)) + self._prio.nbytes

    @property
    def live_env_ids(self) -> np.ndarray:
        """``int64 [E']`` environments with an episode in progress (they accept ``add``)."""
        return np.flatnonzero(self._env_pos >= 0)

    # -------------------------------------------------------------------------------------- writing
    def start_episodes(self, env_ids, obs) -> None:
        """Begin a new episode for each env in ``env_ids`` with its reset observation.

        An episode still in progress for one of these envs is first closed as truncated (see
        ``end_episodes``).

        Args:
            env_ids: ``int [E']`` distinct env ids.
            obs: ``[E', *obs_shape]`` reset observations (pixels: stacked ``[stack*C, H, W]`` uint8 with the
                first frame repeated, as FrameStackObservation's "reset" padding gives).
        """
        env_ids = check_env_ids(env_ids, self.num_envs)
        frames = newest_frames("obs", obs, len(env_ids), self.spec)
        live = env_ids[self._env_pos[env_ids] >= 0]
        if live.size:
            self.end_episodes(live)
        pos = self._allocate(len(env_ids))
        self._obs[pos] = frames
        self._episode[pos] = self._next_episode + np.arange(len(env_ids))
        self._next_episode += len(env_ids)
        self._step[pos] = 0
        self._env_pos[env_ids] = pos

    def end_episodes(self, env_ids) -> None:
        """Close the live episodes of ``env_ids`` at their newest observation, as truncated (values bootstrap
        from that observation). Used to abandon episodes, e.g. when self-play restarts after a resume."""
        env_ids = check_env_ids(env_ids, self.num_envs)
        cur = self._env_pos[env_ids]
        if np.any(cur < 0):
            raise ValueError(f"end_episodes: envs {env_ids[cur < 0].tolist()} have no live episode")
        self._is_final[cur], self._truncated[cur] = True, True
        self._env_pos[env_ids] = -1
        self._promote(cur, np.ones(len(cur), bool))

    def add(self, env_ids, actions, rewards, search_policies, root_values, next_obs, terminated, truncated,
            sampled_actions=None, physics_states=None) -> None:
        """Complete each env's current position and write the next one (vectorised over envs).

        Args:
            env_ids: ``int [E']`` distinct envs with a live episode.
            actions: ``int [E']`` in [0, |A|) or ``float [E', D]`` taken at the current positions.
            rewards: ``[E']`` rewards received for those actions.
            search_policies: ``[E', P]`` search policies at the current positions.
            root_values: ``[E']`` search root values at the current positions.
            next_obs: ``[E', *obs_shape]`` observations after the step (the final ones when done).
            terminated: ``bool [E']`` episode ended by termination (no value after it).
            truncated: ``bool [E']`` episode ended by the time limit (bootstrap from ``next_obs``).
            sampled_actions: ``[E', P, D]`` root candidate actions; required for continuous spaces only.
            physics_states: ``[E', R, S]`` the steps' physics states (``spec.physics_state_shape``), stored
                for reward relabelling when the buffer keeps them (None: unknown, stored as NaN).
        """
        env_ids = check_env_ids(env_ids, self.num_envs)
        e = len(env_ids)
        cur = self._env_pos[env_ids]
        if np.any(cur < 0):
            raise ValueError(f"add: envs {env_ids[cur < 0].tolist()} have no live episode; call start_episodes")
        acts = check_actions(actions, e, self.spec, self.action_dim)
        rewards = as_array("rewards", rewards, (e,), np.float32)
        policies = as_array("search_policies", search_policies, (e, self.policy_size), np.float32)
        roots = as_array("root_values", root_values, (e,), np.float32)
        term = as_array("terminated", terminated, (e,), bool)
        trunc = as_array("truncated", truncated, (e,), bool) & ~term
        if self.continuous:
            if sampled_actions is None:
                raise ValueError("add: sampled_actions [E', P, D] are required for continuous actions")
            sampled = as_array("sampled_actions", sampled_actions, (e, self.policy_size, self.action_dim),
                             np.float32)
        elif sampled_actions is not None:
            raise ValueError("add: sampled_actions must be None for discrete actions")
        frames = newest_frames("next_obs", next_obs, e, self.spec)
        new = self._allocate(e)
        self._action[cur], self._reward[cur], self._policy[cur] = acts, rewards, policies
        self._root_value[cur], self._has_action[cur] = roots, True
        if self.continuous:
            self._sampled_actions[cur] = sampled
        if self._physics_states is not None and physics_states is not None:
            self._physics_states[cur] = as_array("physics_states", physics_states, (e,) + self.state_shape, np.float64)
        self._obs[new] = frames
        self._episode[new], self._step[new] = self._episode[cur], self._step[cur] + 1
        self._prev[new], self._next[cur] = cur, new
        done = term | trunc
        self._is_final[new], self._terminated[new], self._truncated[new] = done, term, trunc
        self._env_pos[env_ids] = np.where(done, -1, new)
        self._promote(new, done)

    def _allocate(self, count: int) -> np.ndarray:
        """Reserve the next ``count`` ring positions (evicting old ones) and reset their fields."""
        pos = (self._ptr + np.arange(count)) % self.capacity
        old = pos[self._insertion[pos] >= 0]
        if old.size:
            if np.isin(old, self._env_pos).any():
                raise RuntimeError(f"replay.capacity={self.capacity} is too small: a live episode's newest "
                                   f"position would be overwritten (num_envs={self.num_envs})")
            self._evict(old)
        self._ptr = int((self._ptr + count) % self.capacity)
        self._size = min(self.capacity, self._size + count)
        self._insertion[pos] = self._num_insertions + np.arange(count)
        self._num_insertions += count
        self._prev[pos] = self._next[pos] = -1
        for arr in (self._is_final, self._terminated, self._truncated, self._has_action):
            arr[pos] = False
        self._reward[pos] = self._root_value[pos] = 0.0
        self._policy[pos] = 0.0
        if self._physics_states is not None:
            self._physics_states[pos] = np.nan
        return pos

    def _evict(self, old: np.ndarray) -> None:
        """Remove positions about to be overwritten: unlink them and withdraw every position whose frame
        stack reaches back to one of them."""
        self._prio.remove(old)
        pred = self._prev[old]
        self._next[pred[pred >= 0]] = -1
        succ = self._next[old]
        succ = succ[succ >= 0]
        self._prev[succ] = -1
        for _ in range(self.stack - 1):
            self._prio.remove(succ)
            succ = self._next[succ]
            succ = succ[succ >= 0]

    def _promote(self, newest: np.ndarray, done: np.ndarray) -> None:
        """After writing ``newest``: the position ``unroll_steps + td_steps`` back becomes sampleable, and
        every remaining position of an episode that just ended (``done``)."""
        q = newest.copy()
        found = []
        for _ in range(self.unroll_steps + self.td_steps):
            q = np.where(q >= 0, self._prev[np.maximum(q, 0)], -1)
            found.append(q[done])
        found.append(q[~done])
        cand = np.concatenate(found)
        self._mark_sampleable(np.unique(cand[cand >= 0]))

    def _mark_sampleable(self, pos: np.ndarray) -> None:
        """Add acted, not yet sampleable positions whose whole frame stack is stored, at the max priority."""
        pos = pos[self._has_action[pos] & ~self._prio.sampleable[pos]]
        need = np.minimum(self.stack - 1, self._step[pos])
        ok, q = np.ones(pos.size, bool), pos.copy()
        for i in range(self.stack - 1):
            p = self._prev[q]
            active = i < need
            ok &= ~active | (p >= 0)
            q = np.where(active & (p >= 0), p, q)
        self._prio.add(pos[ok])

    # ------------------------------------------------------------------------------------- sampling
    def sample(self, batch_size: int, beta: float, rng: np.random.Generator):
        """Draw ``batch_size`` sampleable positions i.i.d. with replacement.

        Prioritized: P(i) = p_i^α / Σ_j p_j^α, weights (N·P(i))^-β divided by the batch maximum (N sampleable
        positions, as in EfficientZero's code). Uniform (``prioritized=False``): unit weights.

        Returns:
            ``(positions int64 [B], weights float32 [B])``.
        """
        return self._prio.sample(batch_size, beta, rng)

    def update_priorities(self, positions, priorities) -> None:
        """Set priorities ``[B]`` (finite, >= 0; raised to ``priority_eps``) of ``positions int [B]``.
        Positions that stopped being sampleable since they were drawn are skipped."""
        self._prio.update(check_positions(positions, self.capacity), priorities)

    def gather(self, positions, rng: np.random.Generator) -> Trajectory:
        """The stored data along the trajectory windows t..t+K+n starting at ``positions``.

        Args:
            positions: ``int [B]`` sampleable positions t.
            rng: Draws the random actions used past the episode end.

        Returns:
            A :class:`Trajectory` (see its docstring for shapes and masks).
        """
        pos = check_positions(positions, self.capacity)
        if not np.all(self._prio.sampleable[pos]):
            raise ValueError(f"gather: positions {pos[~self._prio.sampleable[pos]][:8].tolist()} are not sampleable")
        k1, span = self.unroll_steps + 1, self.unroll_steps + self.td_steps
        chain = np.full((pos.size, span + 1), -1, np.int64)
        chain[:, 0] = pos
        for j in range(1, span + 1):
            c = chain[:, j - 1]
            chain[:, j] = np.where(c >= 0, self._next[np.maximum(c, 0)], -1)
        valid = chain >= 0
        last = valid.sum(1) - 1
        last_pos = chain[np.arange(pos.size), last]
        if np.any((last < span) & ~self._is_final[last_pos]):
            raise RuntimeError("gather: a trajectory stops before its episode ends (broken links)")
        safe = np.where(valid, chain, last_pos[:, None])
        acted = valid & self._has_action[safe]
        step_rewards = np.where(acted, self._reward[safe], 0.0).astype(np.float32)
        idx, pmask, amask = safe[:, :k1], acted[:, :k1], acted[:, :self.unroll_steps]
        return Trajectory(
            obs=self.stacked_obs(idx), actions=self._actions_or_random(safe[:, :self.unroll_steps], amask, rng),
            rewards=step_rewards[:, :span], obs_mask=valid[:, :k1], policy_mask=pmask, action_mask=amask,
            policies=np.where(pmask[..., None], self._policy[idx], 0.0),
            sampled_actions=(np.where(pmask[..., None, None], self._sampled_actions[idx], 0.0)
                             if self.continuous else None),
            root_values=np.where(pmask, self._root_value[idx], 0.0).astype(np.float32),
            ages=self._num_insertions - self._insertion[pos], positions=chain[:, :k1].copy(),
            window_positions=safe, last=last, terminated=self._is_final[last_pos] & self._terminated[last_pos])

    def physics_states(self, positions) -> np.ndarray:
        """``float64 [B, R, S]`` physics states stored with the steps taken at ``positions`` (NaN where none
        were stored); empty ``[B, 0]`` when the buffer keeps none."""
        pos = check_positions(positions, self.capacity)
        return self._physics_states[pos].copy() if self._physics_states is not None else np.zeros((pos.size, 0))

    def ages(self, positions) -> np.ndarray:
        """``int64 [B]`` insertions since each position was written (the off-policy horizon's age)."""
        pos = check_positions(positions, self.capacity)
        return self._num_insertions - self._insertion[pos]

    def content_keys(self, idx: np.ndarray) -> np.ndarray:
        """``int64 [*idx.shape]`` keys that change whenever the stacked observation at a position changes:
        the position rewritten (a new insertion id) or its frame history cut by an eviction (fewer stored
        predecessors). Equal keys mean the same observation, so values computed from it can be reused."""
        depth = np.zeros(idx.shape, np.int64)
        cur = idx
        for _ in range(self.stack - 1):
            prev = self._prev[cur]
            has = prev >= 0
            depth += has
            cur = np.where(has, prev, cur)
        return self._insertion[idx] * self.stack + depth

    def stacked_obs(self, idx: np.ndarray) -> np.ndarray:
        """Observations ``[*idx.shape, *obs_shape]`` at positions ``idx``: frames oldest first, the episode's
        first frame repeated before its step 0 (FrameStackObservation "reset" padding)."""
        if self.stack == 1:
            return self._obs[idx]
        hist = np.empty(idx.shape + (self.stack,), np.int64)
        hist[..., -1] = idx
        for s in range(self.stack - 2, -1, -1):
            p = self._prev[hist[..., s + 1]]
            hist[..., s] = np.where(p >= 0, p, hist[..., s + 1])
        frames = self._obs[hist]
        return frames.reshape(idx.shape + (self.stack * self.frame_shape[0],) + self.frame_shape[1:])

    def _actions_or_random(self, idx: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stored actions at ``idx [B, K]``; uniformly random valid actions where ``mask`` is False."""
        actions = self._action[idx]
        missing = ~mask
        count = int(missing.sum())
        if count:
            if self.continuous:
                actions[missing] = rng.uniform(-1.0, 1.0, size=(count, self.action_dim)).astype(np.float32)
            else:
                actions[missing] = rng.integers(0, self.spec.num_actions, size=count)
        return actions

    # ------------------------------------------------------------------------------------ checkpoint
    def state_dict(self, copy: bool = True) -> Dict[str, object]:
        """Plain numpy arrays and ints (``np.savez``-ready), including each env's live episode position; copies
        unless ``copy=False`` (a checkpoint written at once: no second pixel replay in memory meanwhile)."""
        own = np.copy if copy else np.asarray  # np.asarray returns the array itself
        state: Dict[str, object] = {name: own(getattr(self, "_" + name)) for name in _ARRAYS}
        state.update({name: own(getattr(self, "_" + name)) for name in ("sampled_actions", "physics_states")
                      if getattr(self, "_" + name) is not None})  # continuous actions; stored physics states
        state.update({name: getattr(self, "_" + name) for name in _SCALARS})
        state.update(self._prio.state_dict())
        return state

    def load_state_dict(self, state: Dict[str, object]) -> None:
        """Restore from ``state_dict()`` output (shapes and dtypes must match this buffer's). Live episodes
        come back live: continue them with ``add`` or abandon them with ``start_episodes``/``end_episodes``."""
        names = list(_ARRAYS) + (["sampled_actions"] if self.continuous else [])
        if self._physics_states is not None:  # a state saved without them (older runs, or stored off): NaN
            state = dict(state)
            rows = len(np.asarray(state["obs"]))
            state.setdefault("physics_states", np.full((rows,) + self.state_shape, np.nan))
            names.append("physics_states")
        missing = [k for k in names + list(_SCALARS) + ["sampleable", "priority", "max_priority", "max_dirty"]
                   if k not in state]
        if missing:
            raise ValueError(f"replay state is missing {missing}")
        if len(np.asarray(state["obs"])) != self.capacity:  # saved by a run with another budget (capacity)
            state = resize_state(state, self.capacity, tuple(n for n in names if n != "env_pos"))
        for name in names:
            mine, theirs = getattr(self, "_" + name), np.asarray(state[name])
            if theirs.shape != mine.shape or theirs.dtype != mine.dtype:
                raise ValueError(f"replay state {name!r} is {theirs.shape} {theirs.dtype}; this buffer needs "
                                 f"{mine.shape} {mine.dtype} (capacity, num_envs, obs or policy size differ?)")
        for name in names:
            getattr(self, "_" + name)[...] = np.asarray(state[name])
        for name in _SCALARS:
            setattr(self, "_" + name, int(state[name]))
        self._prio.load_state_dict(state)
