"""Atari adapter for ``atari/<Game>`` (ale-py ``ALE/<Game>-v5`` + gymnasium's own preprocessing).

Chain: ``ALE/<Game>-v5`` (frameskip 1, ``repeat_action_probability = cfg.sticky_action_prob``, minimal
action set) -> ``AtariPreprocessing`` (frame skip 4 with a max over the last two frames, up to
``cfg.noop_max`` no-ops at reset, ``image_size`` square screen, ``grayscale_obs = cfg.grayscale``, uint8)
-> :class:`EpisodicLife` (training only, when ``cfg.episodic_life``) -> ``FrameStackObservation`` (4
frames, padding ``"reset"``) -> :class:`AtariEnv` (channels-first ``[stack * C, S, S]`` uint8, reward
clipping, episode cap).

RGB: gymnasium 1.4's ``AtariPreprocessing`` supports ``grayscale_obs=False`` (it max-pools RGB screens and
resizes them to ``[S, S, 3]``), so the EfficientZero ``[12, 96, 96]`` RGB input needs no custom code.

Life loss: ``AtariPreprocessing(terminal_on_life_loss=True)`` ends the episode at a life loss but its next
``reset()`` restarts the whole game, so an agent would never see the later lives. :class:`EpisodicLife`
instead marks the life loss as terminal and makes the following ``reset()`` continue the running game
(one no-op agent step), restarting it only at a real game over, as in DQN/EfficientZero.

Training: rewards clipped to their sign (``info["raw_reward"]`` keeps the score), episodes capped at
``cfg.max_train_frames`` frames. Evaluation: raw rewards, no episodic life, 108,000-frame cap. Discount
0.997 per agent step (not per frame).
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

import gymnasium as gym
import numpy as np

from .spec import EnvConfig, EnvError, EnvSpec
from .wrappers import discrete_action, suggestion

ATARI_DISCOUNT = 0.997
"""Discount per agent step (EfficientZero code)."""
FRAME_SKIP = 4
"""Frames per agent step (``EnvSpec.action_repeat``) unless ``cfg.action_repeat`` says otherwise."""
FRAME_STACK = 4
"""Frames stacked per observation unless ``cfg.frame_stack`` says otherwise."""
EVAL_MAX_FRAMES = 108_000
"""Frame cap of evaluation episodes."""


def _register_ale() -> None:
    try:
        import ale_py
    except ImportError as exc:
        raise EnvError("atari/* tasks need ale-py (pip install ale-py)") from exc
    gym.register_envs(ale_py)


def available_games() -> List[str]:
    """Names ``<Game>`` of gymnasium's registered ``ALE/<Game>-v5`` ids, sorted."""
    _register_ale()
    pattern = re.compile(r"^ALE/([A-Za-z0-9]+)-v5$")
    return sorted(m.group(1) for m in map(pattern.match, gym.registry) if m)


class EpisodicLife(gym.Wrapper):
    """Ends an episode at a life loss; the next ``reset()`` continues the game unless it was over."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._lives = 0
        self._game_over = True

    def step(self, action):
        """Steps and flags ``terminated`` when a life was lost (game over is also terminal)."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._game_over = bool(terminated or truncated)
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self._lives:
            terminated = True
        self._lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: Optional[int] = None, options=None):
        """Full reset after a game over or when seeded; otherwise one no-op step in the running game."""
        if self._game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        self._game_over = False
        self._lives = self.env.unwrapped.ale.lives()
        return obs, info


class AtariEnv:
    """Preprocessed Atari game with the ezrobot contract (see envs/spec.py)."""

    def __init__(self, env: gym.Env, name: str, *, seed: Optional[int], clip_rewards: bool,
                 max_episode_steps: int, frame_skip: int, grayscale: bool):
        self._env = env
        self._ale = env.unwrapped.ale
        self._pending_seed = seed
        self._clip = clip_rewards
        self._needs_reset = True
        self._t = 0
        stack, size = env.observation_space.shape[0], env.observation_space.shape[1]
        channels = 1 if grayscale else 3
        self.spec = EnvSpec(name=name, obs_shape=(stack * channels, size, size), obs_dtype="uint8",
                            frame_stack=stack, action_type="discrete", num_actions=int(env.action_space.n),
                            discount=ATARI_DISCOUNT, action_repeat=frame_skip,
                            max_episode_steps=int(max_episode_steps))

    @property
    def unwrapped(self):
        """The ale-py gymnasium env."""
        return self._env.unwrapped

    def _observe(self, obs) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.uint8)
        if obs.ndim == 4:  # [stack, S, S, 3] -> [stack * 3, S, S]
            obs = obs.transpose(0, 3, 1, 2).reshape(-1, obs.shape[1], obs.shape[2])
        return np.ascontiguousarray(obs)

    def reset(self, seed: Optional[int] = None):
        """Starts an episode (continues the game after a training life loss). Returns ``(obs, info)``."""
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        obs, _ = self._env.reset(seed=None if seed is None else int(seed))
        self._needs_reset, self._t = False, 0
        return self._observe(obs), {"env_steps": 0}

    def step(self, action):
        """Applies a discrete action for ``frame_skip`` frames.

        Returns:
            ``(obs [stack * C, S, S] uint8, reward, terminated, truncated, info)``; ``info["raw_reward"]``
            is the unclipped score and ``info["env_steps"]`` the frames emulated.
        """
        if self._needs_reset:
            raise EnvError(f"{self.spec.name}: step() called before reset() or after the episode ended")
        frame0 = self._ale.getEpisodeFrameNumber()
        obs, raw, terminated, truncated, _ = self._env.step(discrete_action(action, self.spec.num_actions))
        frames = self._ale.getEpisodeFrameNumber() - frame0
        self._t += 1
        truncated = bool(truncated or (not terminated and self._t >= self.spec.max_episode_steps))
        self._needs_reset = bool(terminated) or truncated
        raw = float(raw)
        reward = float(np.sign(raw)) if self._clip else raw
        info = {"raw_reward": raw, "env_steps": int(frames if frames > 0 else self.spec.action_repeat)}
        return self._observe(obs), reward, bool(terminated), truncated, info

    def render(self, camera=None, height: int | None = None, width: int | None = None) -> np.ndarray:
        """The current full-resolution RGB screen ``[210, 160, 3]`` (resized when height/width given).

        ``camera`` is ignored (Atari has one screen).
        """
        del camera
        screen = self._ale.getScreenRGB()
        if height or width:
            import cv2

            h, w = int(height or screen.shape[0]), int(width or screen.shape[1])
            screen = cv2.resize(screen, (w, h), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(screen)

    def close(self) -> None:
        """Closes the emulator."""
        self._env.close()


def _check_cfg(cfg: EnvConfig, name: str) -> None:
    if cfg.obs_type not in ("auto", "pixels"):
        raise EnvError(f"env.obs_type={cfg.obs_type!r} is not available for {name}; use auto or pixels")
    if cfg.image_size <= 0:
        raise EnvError(f"env.image_size={cfg.image_size} must be positive (96 for EfficientZero)")
    if not 0.0 <= cfg.sticky_action_prob <= 1.0:
        raise EnvError(f"env.sticky_action_prob={cfg.sticky_action_prob} must be in [0, 1]")
    for field_name in ("noop_max", "action_repeat", "frame_stack", "max_episode_steps", "max_train_frames"):
        if getattr(cfg, field_name) < 0:
            raise EnvError(f"env.{field_name}={getattr(cfg, field_name)} is negative; use 0 or more")


def make_atari(game: str, cfg: EnvConfig, *, seed: int, train: bool) -> Tuple[AtariEnv, EnvSpec]:
    """Builds ``atari/<game>`` for training (``train=True``) or evaluation."""
    games = available_games()
    folded = {g.lower(): g for g in games}
    game = folded.get(game.replace("_", "").lower(), game)  # accept mspacman / ms_pacman for MsPacman
    if game not in games:
        raise EnvError(f"unknown Atari game 'atari/{game}'{suggestion(game, games)}; valid names are the "
                       f"<Game> of gymnasium's ALE/<Game>-v5 ids ({len(games)} games, e.g. Pong, Breakout, "
                       "MsPacman; see envs.atari.available_games())")
    name = f"atari/{game}"
    _check_cfg(cfg, name)
    frame_skip = cfg.action_repeat or FRAME_SKIP
    env = gym.make(f"ALE/{game}-v5", frameskip=1, repeat_action_probability=float(cfg.sticky_action_prob),
                   full_action_space=False, **dict(cfg.gym_kwargs))
    env = gym.wrappers.AtariPreprocessing(env, noop_max=int(cfg.noop_max), frame_skip=frame_skip,
                                          screen_size=int(cfg.image_size), terminal_on_life_loss=False,
                                          grayscale_obs=bool(cfg.grayscale), scale_obs=False)
    if train and cfg.episodic_life:
        env = EpisodicLife(env)
    env = gym.wrappers.FrameStackObservation(env, cfg.frame_stack or FRAME_STACK, padding_type="reset")
    max_frames = cfg.max_train_frames if train else EVAL_MAX_FRAMES
    max_steps = cfg.max_episode_steps or max(1, max_frames // frame_skip)
    adapter = AtariEnv(env, name, seed=seed, clip_rewards=train and cfg.clip_rewards,
                       max_episode_steps=max_steps, frame_skip=frame_skip, grayscale=bool(cfg.grayscale))
    return adapter, adapter.spec
