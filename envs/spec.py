"""Environment contract shared by every adapter (no algorithm code imported here).

Every adapter returns an object with the gymnasium-style single-environment API:

* ``reset(seed: int | None = None) -> (obs, info)``
* ``step(action) -> (obs, reward: float, terminated: bool, truncated: bool, info: dict)``
* ``render(camera: str | int | None = None, height: int | None = None, width: int | None = None)``
  ``-> np.ndarray [H, W, 3] uint8``
* ``close() -> None``

plus the attribute ``spec: EnvSpec``. Observations are exactly what the network consumes:
``float32 [D]`` for vectors, ``uint8 [frame_stack * C, H, W]`` for pixels (frames stacked oldest first,
channels-first). Actions are ``int`` for discrete spaces and ``float32 [action_dim]`` in ``[-1, 1]`` for
continuous spaces. ``info`` may hold ``"reward/<term>"`` floats (per agent step), ``"success"`` (bool),
``"raw_reward"`` (the unclipped game score of this step when training rewards are clipped) and
``"env_steps"`` (simulator steps consumed by this agent step, i.e. the action repeat actually applied).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Tuple, Union

from ezrobot.schema import choice

OBS_TYPES = ("auto", "proprio", "pixels")
"""Values of ``EnvConfig.obs_type``."""
RENDER_PRESETS = ("default", "fast", "fast_aa")
"""MuJoCo render presets (``EnvConfig.render_preset``; see ``rendering.apply_model_preset``)."""
ALLOWED_BACKENDS = ("egl", "osmesa", "glfw")
"""Values accepted for ``EnvConfig.mujoco_gl`` / ``$MUJOCO_GL``."""


@dataclass(frozen=True)
class EnvSpec:
    """What the agent needs to know about an environment.

    Attributes:
        name: Task name with suite prefix, e.g. ``"gym/CartPole-v1"``, ``"atari/Pong"``.
        obs_shape: Shape of one observation as returned by ``reset``/``step``: ``(D,)`` for vectors,
            ``(frame_stack * C, H, W)`` for pixels.
        obs_dtype: ``"float32"`` (vectors) or ``"uint8"`` (pixels).
        frame_stack: Number of frames stacked in one observation (1 for vectors).
        action_type: ``"discrete"`` or ``"continuous"``.
        num_actions: Number of discrete actions, or the action dimension for continuous spaces.
        discount: Discount per agent step.
        action_repeat: Simulator steps per agent step.
        max_episode_steps: Episode limit in agent steps.
        reward_terms: Names of the reward terms reported in ``info["reward/<term>"]``.
        has_success: Whether ``info["success"]`` is reported.
        reward_bound: b such that every reward of one agent step lies in ``[-b, b]``, where the suite
            bounds it (DMControl and ezrobot tasks: ``action_repeat``, their per-control-step rewards lie
            in [0, 1]); None when unknown. The MLP presets size their reward and value supports from it.
        physics_state_shape: ``(R, S)`` when the task supports reward relabelling: each step's
            ``info["physics_states"]`` holds the S-vector physics state after each of its R control steps
            (rows past an episode's end are NaN); ``()`` when it does not.
    """

    name: str
    obs_shape: Tuple[int, ...]
    obs_dtype: str
    frame_stack: int
    action_type: str
    num_actions: int
    discount: float
    action_repeat: int
    max_episode_steps: int
    reward_terms: Tuple[str, ...] = ()
    has_success: bool = False
    reward_bound: Optional[float] = None
    physics_state_shape: Tuple[int, ...] = ()

    @property
    def is_pixels(self) -> bool:
        """True when observations are uint8 images."""
        return self.obs_dtype == "uint8"

    @property
    def frame_shape(self) -> Tuple[int, ...]:
        """Shape of one (unstacked) frame: ``(C, H, W)`` for pixels, ``obs_shape`` for vectors."""
        if not self.is_pixels:
            return tuple(self.obs_shape)
        c = self.obs_shape[0] // self.frame_stack
        return (c,) + tuple(self.obs_shape[1:])


@dataclass
class EnvConfig:
    """Environment options (the ``env`` config group). 0 / empty means "the suite's default"."""

    obs_type: str = choice("auto", OBS_TYPES)
    """Observation kind: ``auto`` (the suite's natural one), ``proprio`` (state vector) or ``pixels``."""
    image_size: int = 96
    """Square image side in pixels for pixel observations (DMC: 64, 84 or 96; Atari: 96)."""
    frame_stack: int = 0
    """Frames stacked per observation for pixels (0: suite default, 4 for Atari, 3 for DMC pixels)."""
    grayscale: bool = False
    """Convert pixel frames to one grey channel."""
    action_repeat: int = 0
    """Simulator steps per agent step (0: suite default; Atari 4, DMC pixels per-task PlaNet repeats)."""
    max_episode_steps: int = 0
    """Episode limit in agent steps (0: suite default)."""
    discount: float = 0.0
    """Discount per agent step, in (0, 1] (0: the suite's default: 0.997 for Atari and discrete gymnasium ids,
    0.99 for DMC, continuous gymnasium ids and registered tasks). Used by the search and by every value target."""
    camera: str = ""
    """Camera name or index for pixel observations and videos (empty: the suite's default camera)."""
    render_preset: str = choice("default", RENDER_PRESETS)
    """``default``, ``fast`` or ``fast_aa``: ``fast`` disables shadows, reflections and multisampling,
    ``fast_aa`` only shadows and reflections (CPU speed-ups; they change the pixels, so do not compare
    scores across presets)."""
    action_planes: bool = False
    """DMControl and robot-task pixels: every frame carries D constant uint8 planes holding the action that
    led to it, ``round((a + 1) / 2 * 255)`` (128 after a reset), so a stack of F frames also shows the last F
    actions (MuZero's action history). Frame differences alone confound velocity with the last push."""
    clip_rewards: bool = True
    """Atari: clip training rewards to their sign (evaluation always reports the raw score)."""
    episodic_life: bool = True
    """Atari: end training episodes at a life loss (never during evaluation)."""
    noop_max: int = 30
    """Atari: up to this many no-op actions at reset."""
    sticky_action_prob: float = 0.0
    """Atari: repeat-action probability (0 = sticky actions off, as in the paper)."""
    max_train_frames: int = 108_000
    """Atari: cap on frames per training episode (evaluation is always capped at 108,000)."""
    gym_kwargs: dict = field(default_factory=dict)
    """Extra keyword arguments passed to ``gymnasium.make`` or the task's constructor. Add them one at a
    time: ``+env.gym_kwargs.delta_fraction=0.1``."""
    mujoco_gl: str = choice("", ("",) + ALLOWED_BACKENDS)
    """Rendering backend for MuJoCo (``egl``/``osmesa``; empty: ``$MUJOCO_GL`` or egl then osmesa)."""


class EnvError(ValueError):
    """A user-facing environment error (bad task id, missing renderer...). The message is one line."""


def check_observation(obs: Any, spec: EnvSpec) -> Any:
    """``obs`` unchanged when its shape is ``spec.obs_shape``.

    Raises:
        EnvError: naming the task and both shapes (e.g. a task whose ``observe()`` changes mid-episode).
    """
    shape = tuple(getattr(obs, "shape", ()))
    if shape != tuple(spec.obs_shape):
        raise EnvError(f"{spec.name}: an observation has shape {shape} but the task declared "
                       f"{tuple(spec.obs_shape)} at reset; observations must keep one shape every step")
    return obs


class Env(Protocol):
    """The single-environment API every adapter implements (see the module docstring)."""

    spec: EnvSpec

    def reset(self, seed: Optional[int] = None) -> Tuple[Any, dict]:
        """Start an episode: ``(obs, info)``."""

    def step(self, action: Any) -> Tuple[Any, float, bool, bool, dict]:
        """One agent step: ``(obs, reward, terminated, truncated, info)``."""

    def render(self, camera: Union[str, int, None] = None, height: Optional[int] = None,
               width: Optional[int] = None) -> Any:
        """``[H, W, 3]`` uint8 image of the current state."""

    def close(self) -> None:
        """Release the simulator."""
