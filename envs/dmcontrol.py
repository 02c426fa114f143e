"""dm_control adapter: ``dmc/<domain>-<task>`` suite tasks and any ``control.Environment``.

Observations: ``proprio`` flattens the observation dict in sorted key order to float32 ``[D]``; ``pixels``
renders ``[H, W, 3]`` from one camera and stacks ``frame_stack`` frames to uint8 ``[stack * C, H, W]``.
Actions in ``[-1, 1]^D`` are mapped affinely onto the action spec's bounds. One agent step repeats the
action ``action_repeat`` times, summing rewards (and reward terms); ``info["env_steps"]`` counts the
simulator (control) steps actually taken. Episodes last the environment's step limit (1,000 control steps
for the suite), i.e. ``max_episode_steps = 1000 // action_repeat`` agent steps.

Import this module only after :func:`envs.rendering.select_backend` (it imports dm_control).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

import numpy as np
from dm_control import suite
from dm_control.mujoco.engine import Camera

from . import rendering
from .spec import EnvConfig, EnvError, EnvSpec
from .wrappers import ActionRescaler, FrameStack, suggestion, to_chw

PLANET_ACTION_REPEAT = {"finger": 2, "cartpole": 8, "reacher": 4, "cheetah": 4, "walker": 2,
                        "ball_in_cup": 4}
"""Per-domain action repeats for pixel observations (PlaNet protocol); other domains use 2."""
PROPRIO_ACTION_REPEAT = 2
"""Action repeat for state observations (EfficientZero V2)."""
DOMAIN_ALIASES = {"cup": "ball_in_cup"}
"""Short domain names accepted in task ids (``dmc/cup-catch``)."""
DEFAULT_CAMERA = {"quadruped": 2}
"""Pixel cameras that differ from camera 0 (DrQ's quadruped camera)."""
ALLOWED_IMAGE_SIZES = (64, 84, 96)
"""Square image sides accepted for DMC pixel observations."""
DEFAULT_FRAME_STACK = 3
"""Frames stacked for DMC pixel observations when ``frame_stack`` is 0."""
DMC_DISCOUNT = 0.99
"""Discount per agent step."""
MAX_CONTROL_STEP_REWARD = 1.0
"""Rewards of one control step lie in [0, 1] (the DMControl suite's convention, and ezrobot's tasks)."""
EPISODE_CONTROL_STEPS = 1000
"""Episode length in control steps when the environment has no finite time limit."""
RELABEL_DOMAINS = ("cartpole", "pendulum", "cheetah", "walker", "hopper")
"""Suite domains whose rewards are functions of qpos, qvel, act and ctrl alone (no per-episode model edits,
such as reacher's target), so their transitions can be relabelled with another task of the domain."""

CameraId = Union[int, str]


@dataclass(frozen=True)
class ObsOptions:
    """How a control.Environment is observed and stepped (resolved from EnvConfig and defaults)."""

    pixels: bool
    """Render camera images instead of the state vector."""
    action_repeat: int
    """Control steps per agent step."""
    max_episode_steps: int
    """Episode limit in agent steps."""
    camera: CameraId
    """Camera index or name for observations and ``render()``."""
    image_size: int
    """Square image side of pixel observations."""
    frame_stack: int
    """Frames per observation (1 for proprio)."""
    grayscale: bool
    """One grey channel instead of RGB."""
    render_preset: str
    """``default``, ``fast`` or ``fast_aa`` (see envs.rendering)."""
    action_planes: bool = False
    """Pixels: append D planes of the action that led to each frame (see ``EnvConfig.action_planes``)."""
    physics_states: bool = False
    """Report ``info["physics_states"]`` (the task supports reward relabelling)."""


class DMControlEnv:
    """Gymnasium-style single env over a dm_control ``control.Environment`` (see envs/spec.py)."""

    def __init__(self, env, name: str, opts: ObsOptions, *, seed: Optional[int], discount: float):
        self._env = env
        self._opts = opts
        self._pending_seed = seed
        self._cameras: Dict[Tuple[CameraId, int, int], Camera] = {}
        self._camera_model = None
        self._needs_reset = True
        self._t = 0
        task = env.task
        self._terms: Tuple[str, ...] = tuple(getattr(task, "reward_terms", ()) or ())
        self._has_success = bool(getattr(task, "has_success", False))
        aspec = env.action_spec()
        self._rescale = ActionRescaler(np.broadcast_to(aspec.minimum, aspec.shape),
                                       np.broadcast_to(aspec.maximum, aspec.shape))
        rendering.apply_model_preset(env.physics.model, opts.render_preset)
        self._flags = rendering.render_flag_overrides(opts.render_preset)
        self._stack = FrameStack(opts.frame_stack) if opts.pixels else None
        self.spec = EnvSpec(name=name, obs_shape=self._obs_shape(), obs_dtype="uint8" if opts.pixels
                            else "float32", frame_stack=opts.frame_stack, action_type="continuous",
                            num_actions=self._rescale.dim, discount=discount,
                            action_repeat=opts.action_repeat, max_episode_steps=opts.max_episode_steps,
                            reward_terms=self._terms, has_success=self._has_success,
                            reward_bound=float(opts.action_repeat) * MAX_CONTROL_STEP_REWARD,
                            physics_state_shape=((opts.action_repeat, len(self.relabel_state()))
                                                 if opts.physics_states else ()))

    @property
    def unwrapped(self):
        """The wrapped ``control.Environment``."""
        return self._env

    def physics_state(self) -> np.ndarray:
        """A copy of the simulator state (``physics.get_state()``), for :meth:`restore_physics_state`."""
        return self._env.physics.get_state().copy()

    def restore_physics_state(self, state: np.ndarray) -> None:
        """Puts the simulator back into ``state`` and restarts the episode clock there (vector observations
        only: a pixel frame stack cannot be rebuilt), so that counterfactual actions can be tried from one
        state. The next :meth:`step` continues from it."""
        if self._opts.pixels:
            raise EnvError(f"{self.spec.name}: restore_physics_state needs vector observations")
        with self._env.physics.reset_context():
            self._env.physics.set_state(np.asarray(state))
        self._env._reset_next_step, self._env._step_count = False, 0  # dm_control keeps no public setter
        self._needs_reset, self._t = False, 0

    def relabel_state(self) -> np.ndarray:
        """``float64 [S]``: what the task's reward reads: qpos, qvel, act, ctrl, then the task's episode
        parameters (``episode_parameters(physics)``, e.g. the index of the episode's target)."""
        data, task = self._env.physics.data, self._env.task
        extra = task.episode_parameters(self._env.physics) if hasattr(task, "episode_parameters") else ()
        return np.concatenate([data.qpos, data.qvel, data.act, data.ctrl, np.asarray(extra, np.float64)])

    def rewards_of_states(self, states: np.ndarray) -> np.ndarray:
        """``float64 [N]``: this task's reward of one control step at each state ``[N, S]`` (from
        :meth:`relabel_state`, possibly of another task with the same model); NaN rows give NaN. The
        simulator is left in the last state: use an environment of its own."""
        physics, task = self._env.physics, self._env.task
        model, states = physics.model, np.asarray(states, np.float64)
        width = len(self.relabel_state())
        if states.ndim != 2 or states.shape[1] != width:
            raise EnvError(f"{self.spec.name}: physics states of shape {states.shape} do not fit this task, "
                           f"which needs [N, {width}] (another robot or model?)")
        cuts = np.cumsum([model.nq, model.nv, model.na, model.nu])
        out = np.full(len(states), np.nan)
        for i in np.flatnonzero(np.isfinite(states).all(axis=1)):
            qpos, qvel, act, ctrl, extra = np.split(states[i], cuts)
            with physics.reset_context():
                physics.data.qpos[:], physics.data.qvel[:] = qpos, qvel
                physics.data.act[:], physics.data.ctrl[:] = act, ctrl
                if hasattr(task, "set_episode_parameters"):
                    task.set_episode_parameters(physics, extra)
            out[i] = float(task.get_reward(physics))
        return out

    def _obs_shape(self) -> Tuple[int, ...]:
        if self._opts.pixels:
            channels = (1 if self._opts.grayscale else 3) + (self._rescale.dim if self._opts.action_planes else 0)
            size = self._opts.image_size
            return (self._opts.frame_stack * channels, size, size)
        dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
        return (dim,)

    def _camera(self, camera: CameraId, height: int, width: int) -> Camera:
        model = self._env.physics.model
        if self._camera_model is not model:  # model reloaded: scenes sized for the old one are stale
            self._free_cameras()
            self._camera_model = model
        key = (camera, height, width)
        if key not in self._cameras:
            self._cameras[key] = Camera(self._env.physics, height=height, width=width, camera_id=camera)
        return self._cameras[key]

    def _free_cameras(self) -> None:
        for cam in self._cameras.values():
            cam._scene.free()  # pylint: disable=protected-access
        self._cameras.clear()

    def _frame(self, action: Optional[np.ndarray] = None) -> np.ndarray:
        """``[C (+ D), H, W]`` uint8: the camera image, then (``action_planes``) the agent action in [-1, 1]
        that led to it (None: after a reset, encoded as the zero action)."""
        size = self._opts.image_size
        rgb = self._camera(self._opts.camera, size, size).render(render_flag_overrides=dict(self._flags))
        frame = to_chw(rgb, None, self._opts.grayscale)
        if not self._opts.action_planes:
            return frame
        a = np.zeros(self._rescale.dim) if action is None else np.clip(action, -1.0, 1.0)
        levels = np.rint((a + 1.0) * 127.5).astype(np.uint8)
        planes = np.broadcast_to(levels[:, None, None], (len(levels), size, size))
        return np.concatenate([frame, planes], axis=0)

    def _flatten(self, observation) -> np.ndarray:
        parts = [np.asarray(observation[k], dtype=np.float32).reshape(-1) for k in sorted(observation)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def reset(self, seed: Optional[int] = None):
        """Starts an episode; a seed reseeds the task's random state (same seed -> same start).

        Returns:
            ``(obs, info)``: obs float32 ``[D]`` or uint8 ``[stack * C, H, W]``.
        """
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        if seed is not None:
            self._env.task.random.seed(int(seed))
        timestep = self._env.reset()
        self._needs_reset, self._t = False, 0
        if self._opts.pixels:
            obs = self._stack.reset(self._frame())
        else:
            obs = self._flatten(timestep.observation)
        info = {"env_steps": 0}
        if self._has_success:
            info["success"] = bool(self._env.task.last_success)
        return obs, info

    def step(self, action):
        """Applies ``action`` (float ``[D]`` in ``[-1, 1]``) for ``action_repeat`` control steps.

        Returns:
            ``(obs, reward, terminated, truncated, info)`` with ``info["env_steps"]`` and, for tasks
            with reward terms / success, ``info["reward/<term>"]`` and ``info["success"]``.
        """
        if self._needs_reset:
            raise EnvError(f"{self.spec.name}: step() called before reset() or after the episode ended")
        env_action = self._rescale(action)
        reward, steps = 0.0, 0
        terms = dict.fromkeys(self._terms, 0.0)
        timestep = None
        states = np.full(self.spec.physics_state_shape, np.nan) if self._opts.physics_states else None
        for _ in range(self._opts.action_repeat):
            timestep = self._env.step(env_action)
            if states is not None:
                states[steps] = self.relabel_state()
            steps += 1
            reward += float(timestep.reward or 0.0)
            if self._terms:
                for key, value in self._env.task.last_reward_terms.items():
                    terms[key] = terms.get(key, 0.0) + float(value)
            if timestep.last():
                break
        self._t += 1
        terminated = bool(timestep.last() and timestep.discount == 0.0)
        truncated = not terminated and (timestep.last() or self._t >= self._opts.max_episode_steps)
        self._needs_reset = terminated or truncated
        if self._opts.pixels:
            obs = self._stack.push(self._frame(np.asarray(action, dtype=np.float64).reshape(-1)))
        else:
            obs = self._flatten(timestep.observation)
        info = {"env_steps": steps}
        if states is not None:
            info["physics_states"] = states
        info.update({f"reward/{k}": v for k, v in terms.items()})
        if self._has_success:
            info["success"] = bool(self._env.task.last_success)
        return obs, reward, terminated, truncated, info

    def render(self, camera: CameraId | None = None, height: int | None = None,
               width: int | None = None) -> np.ndarray:
        """Renders ``[height, width, 3]`` uint8 (defaults: the observation camera, 240 x 320)."""
        cam = self._opts.camera if camera is None or camera == "" else parse_camera(camera)
        check_camera(self._env.physics, cam, self.spec.name)
        img = self._camera(cam, int(height or 240), int(width or 320)).render(
            render_flag_overrides=dict(self._flags))
        return np.ascontiguousarray(img)

    def close(self) -> None:
        """Frees cameras and rendering contexts."""
        self._free_cameras()
        self._env.close()


def parse_camera(camera: CameraId) -> CameraId:
    """``"2"`` -> 2, other strings stay camera names, ints stay indices."""
    if isinstance(camera, str):
        text = camera.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    return int(camera)


def check_camera(physics, camera: CameraId, name: str) -> None:
    """Raises EnvError when ``camera`` is not a camera of the model (index, name or -1 = free camera)."""
    model = physics.model
    names = [model.id2name(i, "camera") or str(i) for i in range(model.ncam)]
    if isinstance(camera, int):
        if -1 <= camera < model.ncam:
            return
    elif camera in names:
        return
    raise EnvError(f"{name}: camera {camera!r} does not exist; available: -1 (free), "
                   f"{', '.join(f'{i} ({n})' for i, n in enumerate(names)) or 'no fixed cameras'}")


def resolve_options(env, name: str, cfg: EnvConfig, *, default_repeat: Tuple[int, int],
                    default_camera: CameraId, physics_states: bool = False) -> ObsOptions:
    """Resolves observation/step options for ``env`` from ``cfg`` and the suite or task defaults.

    Args:
        env: The ``control.Environment``.
        name: Task id for error messages.
        cfg: Environment config.
        default_repeat: ``(proprio_repeat, pixels_repeat)`` used when ``cfg.action_repeat`` is 0.
        default_camera: Camera when ``cfg.camera`` is empty.
        physics_states: The task supports reward relabelling (report each step's physics states).
    """
    if cfg.obs_type not in ("auto", "proprio", "pixels"):
        raise EnvError(f"env.obs_type={cfg.obs_type!r} is not allowed for {name}; use auto, proprio or pixels")
    pixels = cfg.obs_type == "pixels"
    if pixels and cfg.image_size not in ALLOWED_IMAGE_SIZES:
        raise EnvError(f"env.image_size={cfg.image_size} is not allowed for {name}; "
                       f"use one of {', '.join(map(str, ALLOWED_IMAGE_SIZES))}")
    for field_name in ("action_repeat", "max_episode_steps", "frame_stack"):
        if getattr(cfg, field_name) < 0:
            raise EnvError(f"env.{field_name}={getattr(cfg, field_name)} is negative; use 0 (default) or more")
    repeat = cfg.action_repeat or default_repeat[1 if pixels else 0]
    limit = getattr(env, "_step_limit", math.inf)
    episode_steps = int(limit) if math.isfinite(limit) else EPISODE_CONTROL_STEPS
    max_steps = cfg.max_episode_steps or max(1, episode_steps // repeat)
    camera = parse_camera(cfg.camera) if cfg.camera != "" else default_camera
    if pixels:
        check_camera(env.physics, camera, name)
    elif cfg.action_planes:
        raise EnvError(f"env.action_planes=true needs pixel observations for {name}; got "
                       f"env.obs_type={cfg.obs_type!r} (use pixels, or action_planes=false)")
    return ObsOptions(pixels=pixels, action_repeat=int(repeat), max_episode_steps=int(max_steps),
                      camera=camera, image_size=int(cfg.image_size),
                      frame_stack=(cfg.frame_stack or DEFAULT_FRAME_STACK) if pixels else 1,
                      grayscale=bool(cfg.grayscale), render_preset=cfg.render_preset,
                      action_planes=bool(cfg.action_planes), physics_states=physics_states)


def wrap_control_env(env, name: str, cfg: EnvConfig, *, seed: Optional[int],
                     default_repeat: Tuple[int, int], default_camera: CameraId,
                     discount: float = DMC_DISCOUNT, physics_states: bool = False) -> Tuple[DMControlEnv, EnvSpec]:
    """Wraps any ``control.Environment`` (suite or registered task) in the adapter; ``physics_states``: the
    task supports reward relabelling (steps report ``info["physics_states"]``)."""
    rendering.check_preset(cfg.render_preset)
    opts = resolve_options(env, name, cfg, default_repeat=default_repeat, default_camera=default_camera,
                           physics_states=physics_states)
    adapter = DMControlEnv(env, name, opts, seed=seed, discount=discount)
    return adapter, adapter.spec


def parse_dmc_id(task_id: str) -> Tuple[str, str]:
    """``"cup-catch"`` -> ``("ball_in_cup", "catch")``; unknown ids raise EnvError with close matches."""
    all_ids = [f"{d}-{t}" for d, t in suite.ALL_TASKS]
    domain, sep, task = task_id.partition("-")
    domain = DOMAIN_ALIASES.get(domain, domain)
    if not sep or (domain, task) not in suite.ALL_TASKS:
        raise EnvError(f"unknown dm_control task 'dmc/{task_id}' (expected dmc/<domain>-<task>)"
                       f"{suggestion(f'{domain}-{task}', all_ids)}; all tasks: dm_control.suite.ALL_TASKS")
    return domain, task


def make_dmc(task_id: str, cfg: EnvConfig, *, seed: int, train: bool) -> Tuple[DMControlEnv, EnvSpec]:
    """Builds ``dmc/<domain>-<task>``; ``train`` does not change DMC behaviour."""
    del train
    domain, task = parse_dmc_id(task_id)
    env = suite.load(domain, task, task_kwargs={"random": seed})
    name = f"dmc/{domain}-{task}"
    return wrap_control_env(env, name, cfg, seed=seed,
                            default_repeat=(PROPRIO_ACTION_REPEAT, PLANET_ACTION_REPEAT.get(domain, 2)),
                            default_camera=DEFAULT_CAMERA.get(domain, 0),
                            physics_states=domain in RELABEL_DOMAINS)
