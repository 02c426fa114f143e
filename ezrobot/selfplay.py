"""In-process vectorised self-play: E environments stepped in lock-step, one batched search per step.

The actor never computes gradients. It receives an ``act_fn`` (observations -> actions and search
statistics), so the same class serves the random warm-up policy and the searched policy, and can later run
inside a Ray actor unchanged (its inputs and outputs are plain arrays and dataclasses).
"""
from __future__ import annotations

import pickle
from typing import Callable, List, Optional, Sequence

import numpy as np

from ezrobot.envs.spec import check_observation
from ezrobot.types import ActOutput, EpisodeStats


class EpisodeTracker:
    """Accumulates returns, lengths, reward terms and success of running episodes for E envs."""

    def __init__(self, num_envs: int):
        self.ret = np.zeros(num_envs)
        self.length = np.zeros(num_envs, dtype=np.int64)
        self.env_steps = np.zeros(num_envs, dtype=np.int64)
        self.terms: List[dict] = [{} for _ in range(num_envs)]

    def record(self, i: int, reward: float, info: dict, action_repeat: int) -> None:
        """Add one agent step of env ``i`` (the raw score is used when rewards are clipped)."""
        self.ret[i] += info.get("raw_reward", reward)
        self.length[i] += 1
        self.env_steps[i] += info.get("env_steps", action_repeat)
        for key, value in info.items():
            if key.startswith("reward/"):
                self.terms[i][key] = self.terms[i].get(key, 0.0) + float(value)

    def finish(self, i: int, info: dict) -> EpisodeStats:
        """Close env ``i``'s episode and reset its counters."""
        success = info.get("success")
        stats = EpisodeStats(float(self.ret[i]), int(self.length[i]), int(self.env_steps[i]),
                             dict(self.terms[i]), None if success is None else bool(success))
        self.ret[i], self.length[i], self.env_steps[i], self.terms[i] = 0.0, 0, 0, {}
        return stats


class SelfPlay:
    """Steps E training environments and writes every transition into the replay buffer.

    Args:
        envs: E environments following ``ezrobot.envs.spec``'s API.
        spec: Their common ``EnvSpec``.
        replay: A ``Replay`` (``start_episodes`` / ``add``).
        seed: Base seed; env i is first reset with ``seed + i``.
    """

    def __init__(self, envs: Sequence, spec, replay, seed: int):
        self.envs = list(envs)
        self.spec = spec
        self.replay = replay
        self.tracker = EpisodeTracker(len(self.envs))
        self.env_ids = np.arange(len(self.envs))
        self.obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)])
        replay.start_episodes(self.env_ids, self.obs)

    def step(self, act_fn: Callable[[np.ndarray], ActOutput]):
        """Take one agent step in every environment.

        Returns:
            ``(env_steps_taken, finished_episodes: list[EpisodeStats])``.
        """
        out = act_fn(self.obs)
        next_obs = np.empty_like(self.obs)
        rewards = np.zeros(len(self.envs), dtype=np.float32)
        terminated = np.zeros(len(self.envs), dtype=bool)
        truncated = np.zeros(len(self.envs), dtype=bool)
        infos = []
        env_steps = 0
        for i, env in enumerate(self.envs):
            obs, reward, term, trunc, info = env.step(out.actions[i])
            next_obs[i] = check_observation(obs, self.spec)
            rewards[i], terminated[i], truncated[i] = reward, term, trunc
            self.tracker.record(i, reward, info, self.spec.action_repeat)
            env_steps += int(info.get("env_steps", self.spec.action_repeat))
            infos.append(info)
        states = (np.stack([info["physics_states"] for info in infos]) if self.spec.physics_state_shape
                  else None)
        self.replay.add(self.env_ids, out.actions, rewards, out.policy, out.root_value, next_obs,
                        terminated, truncated, sampled_actions=out.sampled_actions, physics_states=states)
        finished: List[EpisodeStats] = []
        done = np.flatnonzero(terminated | truncated)
        for i in done:
            finished.append(self.tracker.finish(i, infos[i]))
            next_obs[i] = check_observation(self.envs[i].reset()[0], self.spec)
        if len(done):
            self.replay.start_episodes(done, next_obs[done])
        self.obs = next_obs
        return env_steps, finished

    def state_dict(self) -> Optional[bytes]:
        """The environments (simulator state and RNGs), their current observations and the running episodes'
        statistics, pickled; None when an environment cannot be pickled (a resume then restarts episodes)."""
        try:
            return pickle.dumps({"envs": self.envs, "obs": self.obs, "tracker": self.tracker})
        except Exception:  # noqa: BLE001 - renderers, simulator handles...: whatever cannot be pickled
            return None

    def load_state_dict(self, blob: bytes) -> None:
        """Continue exactly where :meth:`state_dict` was taken: the replay must hold the live episodes saved
        with it (``Replay.load_state_dict``)."""
        state = pickle.loads(blob)
        if len(state["envs"]) != len(self.envs):
            raise ValueError(f"saved self-play has {len(state['envs'])} environments; this run has {len(self.envs)}")
        self.close()
        self.envs, self.obs, self.tracker = list(state["envs"]), state["obs"], state["tracker"]

    def restart_after_resume(self) -> None:
        """After the replay was restored from a checkpoint: close the episodes that were live when it was
        saved (as truncated, since their environments are gone) and start fresh ones from the current envs."""
        live = self.replay.live_env_ids
        if len(live):
            self.replay.end_episodes(live)
        self.replay.start_episodes(self.env_ids, self.obs)
        self.tracker = EpisodeTracker(len(self.envs))

    def close(self) -> None:
        for env in self.envs:
            env.close()


class RandomActor:
    """Uniform random policy for the warm-up phase (uniform search policy, zero root value).

    Args:
        spec: The environments' ``EnvSpec``.
        policy_size: P, the search-policy width stored in the replay.
        rng: The actor's own generator.
    """

    def __init__(self, spec, policy_size: int, rng: np.random.Generator):
        self.spec, self.policy_size, self.rng = spec, policy_size, rng

    def __call__(self, obs: np.ndarray) -> ActOutput:
        """Random actions for observations ``obs [E, *O]``."""
        e = obs.shape[0]
        policy = np.full((e, self.policy_size), 1.0 / self.policy_size, dtype=np.float32)
        if self.spec.action_type == "discrete":
            return ActOutput(self.rng.integers(0, self.spec.num_actions, size=e), policy, np.zeros(e, np.float32))
        sampled = self.rng.uniform(-1, 1, size=(e, self.policy_size, self.spec.num_actions)).astype(np.float32)
        return ActOutput(sampled[:, 0].copy(), policy, np.zeros(e, np.float32), sampled)
