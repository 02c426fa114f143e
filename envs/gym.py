"""Gymnasium adapter for ``gym/<id>``: any registered id with a Discrete or Box action space.

Observations: image spaces (uint8 ``[H, W, C]``) become uint8 ``[stack * C, S, S]`` frames (resized to
``cfg.image_size`` with area interpolation, grey per ``cfg.grayscale``, ``cfg.frame_stack`` frames,
default 4); every other space is flattened with ``gymnasium.spaces.flatten`` to float32 ``[D]``
(Discrete observations become one-hot). ``obs_type="pixels"`` on a vector env observes ``env.render()``
frames instead (needs the env's ``rgb_array`` renderer). Box actions are taken in ``[-1, 1]`` and
rescaled to the space's bounds. Discount 0.997 (discrete actions) or 0.99 (continuous); action repeat
``cfg.action_repeat`` (default 1) with summed rewards.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # classic-control renders through pygame (a dependency)

import gymnasium as gym  # noqa: E402
import numpy as np
from gymnasium import spaces

from . import rendering
from .spec import EnvConfig, EnvError, EnvSpec
from .wrappers import ActionRescaler, FrameStack, discrete_action, suggestion, to_chw

DEFAULT_FRAME_STACK = 4
"""Frames stacked for image observations when ``cfg.frame_stack`` is 0."""
DISCRETE_DISCOUNT = 0.997
"""Discount per agent step for discrete-action envs (EfficientZero's Atari value)."""
CONTINUOUS_DISCOUNT = 0.99
"""Discount per agent step for continuous-action envs (as for DMC)."""
DEFAULT_MAX_EPISODE_STEPS = 27_000
"""Episode limit when neither the registry nor the config gives one (108,000 frames at frame skip 4)."""


def is_image_space(space) -> bool:
    """True for uint8 Box spaces shaped ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``."""
    return (isinstance(space, spaces.Box) and space.dtype == np.uint8
            and (len(space.shape) == 2 or (len(space.shape) == 3 and space.shape[-1] in (1, 3))))


def _registry_ids():
    try:  # register the ALE/<Game>-v5 ids so gym/ALE/... works and is suggested
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        pass
    return gym.registry


class GymEnv:
    """Single gymnasium env with the ezrobot contract (see envs/spec.py)."""

    def __init__(self, env: gym.Env, name: str, cfg: EnvConfig, *, seed: Optional[int], pixels: bool):
        self._env = env
        self._pending_seed = seed
        self._needs_reset = True
        self._t = 0
        space = env.observation_space
        self._pixels = pixels
        self._repeat = cfg.action_repeat or 1
        self._size = int(cfg.image_size)
        self._grayscale = bool(cfg.grayscale)
        stack = (cfg.frame_stack or DEFAULT_FRAME_STACK) if pixels else 1
        self._stack = FrameStack(stack) if pixels else None
        act = env.action_space
        if isinstance(act, spaces.Discrete):
            self._rescale, num_actions, kind = None, int(act.n), "discrete"
        elif isinstance(act, spaces.Box):
            self._rescale = ActionRescaler(act.low.reshape(-1), act.high.reshape(-1))
            num_actions, kind = self._rescale.dim, "continuous"
        else:
            raise EnvError(f"{name}: action space {act} is not supported; use an env with a Discrete or Box "
                           "action space")
        if pixels:
            channels = 1 if self._grayscale or (len(space.shape) == 2 or space.shape[-1] == 1) else 3
            obs_shape: Tuple[int, ...] = (stack * channels, self._size, self._size)
        else:
            obs_shape = (int(spaces.flatdim(space)),)
        limit = env.spec.max_episode_steps if env.spec is not None else None
        max_steps = cfg.max_episode_steps or (-(-limit // self._repeat) if limit else DEFAULT_MAX_EPISODE_STEPS)
        self.spec = EnvSpec(name=name, obs_shape=obs_shape, obs_dtype="uint8" if pixels else "float32",
                            frame_stack=stack, action_type=kind, num_actions=num_actions,
                            discount=DISCRETE_DISCOUNT if kind == "discrete" else CONTINUOUS_DISCOUNT,
                            action_repeat=self._repeat, max_episode_steps=int(max_steps))

    @property
    def unwrapped(self):
        """The underlying gymnasium env."""
        return self._env

    def _observe(self, obs, first: bool) -> np.ndarray:
        if not self._pixels:
            return np.asarray(spaces.flatten(self._env.observation_space, obs), dtype=np.float32)
        frame = to_chw(obs, self._size, self._grayscale)
        return self._stack.reset(frame) if first else self._stack.push(frame)

    def reset(self, seed: Optional[int] = None):
        """Starts an episode (same seed -> same start). Returns ``(obs, info)``."""
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        obs, _ = self._env.reset(seed=None if seed is None else int(seed))
        self._needs_reset, self._t = False, 0
        return self._observe(obs, first=True), {"env_steps": 0}

    def step(self, action):
        """Applies ``action`` (int, or float ``[D]`` in ``[-1, 1]``) ``action_repeat`` times.

        Returns:
            ``(obs, reward, terminated, truncated, info)``; ``info["env_steps"]`` = steps taken.
        """
        if self._needs_reset:
            raise EnvError(f"{self.spec.name}: step() called before reset() or after the episode ended")
        if self._rescale is None:
            env_action = discrete_action(action, self.spec.num_actions) + int(self._env.action_space.start)
        else:
            env_action = self._rescale(action).astype(self._env.action_space.dtype).reshape(
                self._env.action_space.shape)
        reward, steps, terminated, truncated = 0.0, 0, False, False
        for _ in range(self._repeat):
            obs, r, terminated, truncated, _ = self._env.step(env_action)
            reward += float(r)
            steps += 1
            if terminated or truncated:
                break
        self._t += 1
        truncated = bool(truncated or (not terminated and self._t >= self.spec.max_episode_steps))
        self._needs_reset = bool(terminated) or truncated
        return self._observe(obs, first=False), reward, bool(terminated), truncated, {"env_steps": steps}

    def render(self, camera=None, height: int | None = None, width: int | None = None) -> np.ndarray:
        """The env's ``rgb_array`` frame ``[H, W, 3]`` uint8, resized when height/width are given.

        ``camera`` is ignored: gymnasium envs render from their own fixed viewpoint.
        """
        del camera
        try:
            frame = self._env.render()
        except Exception as exc:  # gymnasium raises DependencyNotInstalled, ValueError...
            raise EnvError(f"{self.spec.name}: render() failed: {type(exc).__name__}: {exc}") from exc
        if frame is None:
            raise EnvError(f"{self.spec.name}: render() returned nothing; the env has no rgb_array mode")
        frame = np.asarray(frame, dtype=np.uint8)
        if height or width:
            import cv2

            h, w = int(height or frame.shape[0]), int(width or frame.shape[1])
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame)

    def close(self) -> None:
        """Closes the gymnasium env."""
        self._env.close()


def make_gym(env_id: str, cfg: EnvConfig, *, seed: int, train: bool) -> Tuple[GymEnv, EnvSpec]:
    """Builds ``gym/<env_id>``; ``train`` does not change gymnasium envs."""
    del train
    registry = _registry_ids()
    if env_id not in registry:
        raise EnvError(f"unknown gymnasium id 'gym/{env_id}'{suggestion(env_id, registry.keys())}")
    if cfg.obs_type not in ("auto", "proprio", "pixels"):
        raise EnvError(f"env.obs_type={cfg.obs_type!r} is not allowed; use auto, proprio or pixels")
    entry = str(registry[env_id].entry_point)
    if "mujoco" in entry:  # gymnasium's MuJoCo renderer reads MUJOCO_GL when it first renders
        rendering.select_backend(cfg.mujoco_gl, strict=cfg.obs_type == "pixels")
    kwargs = dict(cfg.gym_kwargs)
    kwargs.setdefault("render_mode", "rgb_array")
    try:
        env = gym.make(env_id, **kwargs)
    except Exception as exc:  # missing optional dependency, bad kwargs...
        raise EnvError(f"gym/{env_id}: gymnasium.make failed: {type(exc).__name__}: {exc}") from exc
    native_image = is_image_space(env.observation_space)
    if cfg.obs_type == "proprio" and native_image:
        env.close()
        raise EnvError(f"gym/{env_id} observes images; env.obs_type='proprio' is not available for it")
    if cfg.obs_type == "pixels" and not native_image:
        env = gym.wrappers.AddRenderObservation(env, render_only=True)
    adapter = GymEnv(env, f"gym/{env_id}", cfg, seed=seed, pixels=cfg.obs_type == "pixels" or native_image)
    return adapter, adapter.spec
