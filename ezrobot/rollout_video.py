"""Rollout videos: run episodes, render every step from one or more cameras, annotate, write mp4/gif.

Typical use (what ``ezrobot video`` does)::

    env, spec = make_env("dmc/cartpole-swingup", EnvConfig(), seed=0, train=False)
    policy_fn = random_policy(spec, np.random.default_rng(0))
    episodes = record_rollouts(env, policy_fn, episodes=2, cameras=[0, 1], size=(240, 320), seed=0)
    write_video([f for episode in episodes for f in episode.frames], "out.mp4", fps=30, format="mp4")

``policy_fn(obs) -> (action, extras)``; ``extras`` may hold ``"value"`` (float), ``"visit_probs"`` (``[K]``,
or ``"visit_counts"``, normalised here) and ``"sampled_actions"`` (``[K, D]``, continuous control). An
episode of T steps gives T + 1 frames: frame t shows the state after t steps, and the agent's value and
search statistics of the decision taken from it. The realised discounted return-to-go needs the whole
episode, so frames are annotated in a second pass (:class:`EpisodeRecorder`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ezrobot.agent import SearchAgent
from ezrobot.config import Config
from ezrobot.envs import make_env
from ezrobot.envs.spec import EnvSpec
from ezrobot.overlay import RolloutFrameInfo, draw_overlay, tile_frames
from ezrobot.video_writer import write_video

Camera = Union[str, int, None]
PolicyFn = Callable[[Any], Tuple[Any, Dict[str, Any]]]


def parse_cameras(text: str) -> List[Camera]:
    """``"0,side"`` -> ``[0, "side"]``; ``""`` -> ``[None]`` (the env's default camera)."""
    if not text.strip():
        return [None]
    cams: List[Camera] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"camera list {text!r} has an empty entry; write names or indices like '0,side'")
        cams.append(int(part) if part.lstrip("-").isdigit() else part)
    return cams


def random_policy(spec: EnvSpec, rng: np.random.Generator) -> PolicyFn:
    """Uniform random actions for ``spec`` (an :class:`EnvSpec`): ints in ``[0, num_actions)`` or float32
    ``[num_actions]`` in ``[-1, 1]``. The extras dict is empty."""
    if spec.action_type == "discrete":
        return lambda obs: (int(rng.integers(spec.num_actions)), {})
    if spec.action_type == "continuous":
        return lambda obs: (rng.uniform(-1.0, 1.0, spec.num_actions).astype(np.float32), {})
    raise ValueError(f"action_type {spec.action_type!r} is not supported; allowed: 'discrete', 'continuous'")


class SearchPolicy:
    """``obs -> (action, extras)`` with the deterministic (evaluation) search; the extras feed the overlays.

    Args:
        agent: The search agent.
        model: The network searched with (in eval mode).
        rng: Generator of the search.
        continuous: Whether actions are float vectors (the sampled candidates are shown then).
    """

    def __init__(self, agent: SearchAgent, model: torch.nn.Module, rng: np.random.Generator, continuous: bool):
        self.agent, self.model, self.rng, self.continuous = agent, model, rng, continuous

    def __call__(self, obs: np.ndarray) -> Tuple[Any, Dict[str, Any]]:
        """The searched action for one observation and its value / visit statistics."""
        out = self.agent.search(self.model, obs[None], self.rng, train=False)
        extras = {"value": float(out.root_value[0]), "visit_probs": out.policy[0]}
        if self.continuous:
            extras["sampled_actions"] = out.sampled_actions[0]
            return out.action[0], extras
        return int(out.action[0]), extras


def discounted_returns(rewards: Sequence[float], discount: float) -> np.ndarray:
    """Realised return-to-go ``G_t = sum_{k>=0} discount**k * r_{t+k}`` for every frame.

    Args:
        rewards: ``[T]`` rewards of the steps of an episode.
        discount: Per-step discount in ``[0, 1]``.

    Returns:
        ``[T + 1]`` float64; ``G_T = 0`` for the frame after the last step.
    """
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount {discount} must lie in [0, 1]")
    out = np.zeros(len(rewards) + 1, np.float64)
    for t in range(len(rewards) - 1, -1, -1):
        out[t] = float(rewards[t]) + discount * out[t + 1]
    return out


def render_cameras(env, cameras: Sequence[Camera], size: Tuple[int, int]) -> np.ndarray:
    """Render ``env`` from every camera at ``size = (H, W)`` and tile them: ``[H, len(cameras) * W, 3]``."""
    height, width = _check_size(size)
    images = []
    for cam in cameras:
        img = np.asarray(env.render(camera=cam, height=height, width=width))
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"env.render(camera={cam!r}) returned shape {img.shape}; expected [H, W, 3]")
        if img.shape[:2] != (height, width):
            import cv2

            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
        images.append(img.astype(np.uint8, copy=False))
    return tile_frames(images)


class EpisodeRecorder:
    """Collects one episode's frames and per-step data; :meth:`finish` annotates them in a second pass.

    Call :meth:`start` with the frame after reset, then :meth:`step` after every env step with the frame
    after it, the step's reward and info, and the action and extras of the decision that led to it.
    """

    def __init__(self, discount: float, *, overlays: bool = True,
                 term_scales: Optional[Mapping[str, float]] = None, term_max: float = 1.0):
        """Args:
            discount: Per-step discount of the return-to-go shown beside the predicted value.
            overlays: Draw the info panel; if False, :meth:`finish` returns the frames as rendered.
            term_scales: ``{term: per-step max}`` for the reward-term bars (default: the larger of
                ``term_max`` and the episode's largest ``|value|`` of that term).
            term_max: The most a term can add up to in one agent step: the action repeat for reward-shaped
                tasks, whose terms (each in [0, 1] per simulator step) are summed over the repeated steps.
        """
        self.discount = float(discount)
        self.overlays = overlays
        self.term_scales = dict(term_scales or {})
        self.term_max = float(term_max)
        self.frames: List[np.ndarray] = []
        self.infos: List[RolloutFrameInfo] = []
        self.rewards: List[float] = []

    def start(self, frame: np.ndarray) -> None:
        """Begin the episode with the frame rendered after reset (``[H, W, 3]`` uint8)."""
        self.frames, self.infos, self.rewards = [frame], [RolloutFrameInfo(step=0)], []

    def step(self, frame: np.ndarray, reward: float, info: Mapping[str, Any], action: Any = None,
             extras: Optional[Mapping[str, Any]] = None) -> None:
        """Record one env step.

        Args:
            frame: ``[H, W, 3]`` uint8 rendered after the step (same shape as the first frame).
            reward: The step's reward.
            info: The step's info dict; ``"reward/<term>"`` entries become the term bars.
            action: The action taken (attached to the previous frame).
            extras: The policy's extras for that action (attached to the previous frame).
        """
        if not self.frames:
            raise RuntimeError("EpisodeRecorder.step() called before start(frame)")
        if frame.shape != self.frames[0].shape:
            raise ValueError(f"frame shape {frame.shape} differs from the episode's first {self.frames[0].shape}")
        prev = self.infos[-1]
        prev.action = action
        prev.value, prev.visit_probs, prev.sampled_actions = _parse_extras(extras or {})
        self.rewards.append(float(reward))
        terms = {k[len("reward/"):]: float(v) for k, v in info.items() if k.startswith("reward/")}
        self.infos.append(RolloutFrameInfo(step=len(self.rewards), reward=float(reward),
                                           episode_return=prev.episode_return + float(reward),
                                           reward_terms=terms))
        self.frames.append(frame)

    @property
    def episode_return(self) -> float:
        """Undiscounted return so far."""
        return self.infos[-1].episode_return if self.infos else 0.0

    def finish(self) -> List[np.ndarray]:
        """Fill in the return-to-go and draw the overlays; returns the episode's T + 1 frames."""
        if not self.frames:
            raise RuntimeError("EpisodeRecorder.finish() called before start(frame)")
        for info, togo in zip(self.infos, discounted_returns(self.rewards, self.discount)):
            info.return_to_go = float(togo)
        if not self.overlays:
            return list(self.frames)
        scales = self.bar_scales()
        return [draw_overlay(f, i, scales, list(scales)) for f, i in zip(self.frames, self.infos)]

    def bar_scales(self) -> Dict[str, float]:
        """``{term: value of a full bar}`` in order of appearance: ``term_scales`` where given, else the larger
        of ``term_max`` and the term's largest ``|value|`` in the episode."""
        peaks: Dict[str, float] = {}
        for info in self.infos:
            for name, value in info.reward_terms.items():
                peaks[name] = max(peaks.get(name, self.term_max), abs(value))
        return {name: float(self.term_scales.get(name, peak)) for name, peak in peaks.items()}


@dataclass
class EpisodeRecording:
    """One recorded episode.

    Attributes:
        frames: T + 1 frames ``[H, W, 3]`` uint8 (annotated when overlays were on).
        infos: The T + 1 :class:`RolloutFrameInfo` drawn on them.
        episode_return: Undiscounted return.
        length: Agent steps T.
        terminated: Whether the env ended the episode (False: truncated or stopped at ``max_steps``).
        bar_scales: ``{term: value of a full bar}`` of the reward-term bars (see
            :meth:`EpisodeRecorder.bar_scales`).
    """

    frames: List[np.ndarray]
    infos: List[RolloutFrameInfo] = field(default_factory=list)
    episode_return: float = 0.0
    length: int = 0
    terminated: bool = False
    bar_scales: Dict[str, float] = field(default_factory=dict)


def record_episode(env, policy_fn: PolicyFn, cameras: Sequence[Camera] = (None,), *,
                   size: Tuple[int, int] = (240, 320), overlays: bool = True, seed: Optional[int] = None,
                   max_steps: Optional[int] = None, discount: Optional[float] = None,
                   term_scales: Optional[Mapping[str, float]] = None) -> EpisodeRecording:
    """Play one episode with ``policy_fn`` and render every step.

    Args:
        env: An env following ``envs/spec.py`` (``reset``, ``step``, ``render``, ``spec``).
        policy_fn: ``obs -> (action, extras)``.
        cameras: Cameras tiled left to right (names, indices, or None for the default).
        size: ``(H, W)`` of each camera image.
        overlays: Draw the info panel (adds ``panel_width(H)`` columns).
        seed: Reset seed.
        max_steps: Stop after this many agent steps (None: when the env ends the episode).
        discount: Return-to-go discount (default ``env.spec.discount``).
        term_scales: Per-step max of reward terms (default: the env's action repeat, or a term's largest
            value in the episode when larger; see :class:`EpisodeRecorder`).
    """
    if not cameras:
        raise ValueError("cameras must name at least one camera (use [None] for the env's default)")
    if max_steps is not None and max_steps < 0:
        raise ValueError(f"max_steps {max_steps} must be >= 0 or None")
    discount = float(env.spec.discount if discount is None else discount)
    recorder = EpisodeRecorder(discount, overlays=overlays, term_scales=term_scales,
                               term_max=float(getattr(env.spec, "action_repeat", 1) or 1))
    obs, _ = env.reset(seed=seed)
    recorder.start(render_cameras(env, cameras, size))
    terminated = truncated = False
    while not (terminated or truncated) and (max_steps is None or len(recorder.rewards) < max_steps):
        out = policy_fn(obs)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"policy_fn must return (action, extras), got {type(out).__name__}")
        action, extras = out
        obs, reward, terminated, truncated, info = env.step(action)
        recorder.step(render_cameras(env, cameras, size), reward, info, action, extras)
    infos = recorder.infos
    frames = recorder.finish()
    return EpisodeRecording(frames, infos, recorder.episode_return, len(recorder.rewards), bool(terminated),
                            recorder.bar_scales())


def record_rollouts(env, policy_fn: PolicyFn, episodes: int, cameras: Sequence[Camera] = (None,), *,
                    size: Tuple[int, int] = (240, 320), overlays: bool = True, seed: int = 0,
                    max_steps: Optional[int] = None) -> List[EpisodeRecording]:
    """Record ``episodes`` episodes (episode i reset with ``seed + i``); returns each episode's recording.

    See :func:`record_episode` for the arguments. Every frame of every episode has the same shape
    ``[H, len(cameras) * W (+ panel_width(H)), 3]``.
    """
    if episodes <= 0:
        raise ValueError(f"episodes {episodes} must be a positive integer")
    return [record_episode(env, policy_fn, cameras, size=size, overlays=overlays, seed=seed + i,
                           max_steps=max_steps) for i in range(episodes)]


def _check_size(size: Tuple[int, int]) -> Tuple[int, int]:
    if len(size) != 2 or any(int(s) != s or s <= 0 for s in size):
        raise ValueError(f"size {tuple(size)} must be (height, width) in positive whole pixels")
    return int(size[0]), int(size[1])


def _parse_extras(extras: Mapping[str, Any]) -> Tuple[Optional[float], Optional[np.ndarray], Optional[np.ndarray]]:
    """``(value, visit_probs [K], sampled_actions [K, D])`` from a policy's extras, validated."""
    value = extras.get("value")
    value = None if value is None else float(np.asarray(value).reshape(()))
    probs = extras.get("visit_probs")
    if probs is None and extras.get("visit_counts") is not None:
        counts = np.asarray(extras["visit_counts"], np.float64)
        probs = counts / max(counts.sum(), 1e-12)
    if probs is not None:
        probs = np.asarray(probs, np.float64)
        if probs.ndim != 1 or probs.size == 0 or not np.all(np.isfinite(probs)) or probs.min() < 0:
            raise ValueError(f"extras['visit_probs'] must be a non-empty [K] array of finite values >= 0, "
                             f"got shape {probs.shape}")
    sampled = extras.get("sampled_actions")
    if sampled is not None:
        sampled = np.asarray(sampled, np.float64)
        if sampled.ndim != 2 or probs is None or sampled.shape[0] != probs.shape[0]:
            raise ValueError(f"extras['sampled_actions'] must be [K, D] matching visit_probs [K], got "
                             f"{sampled.shape} with visit_probs {None if probs is None else probs.shape}")
    return value, probs, sampled


class EvalVideoRecorder:
    """The trainer's evaluation video (``eval.video``): the first evaluation episode (same seed, deterministic
    search) rendered to ``<run_dir>/videos/eval_<env steps>.mp4``. An ``ezrobot.evaluate.VideoRecorder``.

    Args:
        cfg: The run configuration (task, env settings, ``eval.video_camera``, ``run_dir``).
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def __call__(self, agent: SearchAgent, model: torch.nn.Module, env_steps: int, seed: int) -> str:
        """Record and write the video; returns its path."""
        cfg = self.cfg
        env, spec = make_env(cfg.task, cfg.env, seed=seed, train=False)
        was_training = model.training
        model.eval()
        try:
            policy = SearchPolicy(agent, model, np.random.default_rng(seed), spec.action_type == "continuous")
            rec = record_episode(env, policy, parse_cameras(cfg.eval.video_camera), seed=seed)
        finally:
            env.close()
            model.train(was_training)
        path = os.path.join(cfg.run_dir, "videos", f"eval_{env_steps:09d}.mp4")
        write_video(rec.frames, path, fps=30, format="mp4")
        return str(path)
