"""The reward-shaped task API: one :class:`ShapedTask` subclass per task file.

A task file declares, in the style of dm_control's suite:

* the scene: :meth:`ShapedTask.build_scene` returns a ``mujoco.MjSpec`` (an MJCF file next to the task,
  a robot model shipped with dm_control / gymnasium, or a MuJoCo Menagerie robot, see ``tasks.scene``);
* observations: :meth:`ShapedTask.observe` returns named proprio features; pixels are rendered by the
  environment adapter from ``physics.render(camera_id=task.default_camera)``;
* the action mapping: every actuator is driven by one action in ``[-1, 1]``, mapped linearly onto the
  actuator's ``ctrlrange`` (an actuator without a ``ctrlrange`` is an error), or, with
  ``action_mode = "delta"``, moving the actuator's current control by ``action * delta_fraction`` of its
  ctrlrange per control step (position servos then start each episode at their joints' positions);
* episode length (``time_limit`` seconds of ``control_timestep`` steps) and ``default_action_repeat``;
* initial-state randomisation: :meth:`ShapedTask.initialize_episode` using ``self.random``;
* the reward: named terms (:meth:`ShapedTask.compute_terms`, each from
  ``dm_control.utils.rewards.tolerance`` and in ``[0, 1]``) combined by ``reward_rule``;
* an optional success criterion (:meth:`ShapedTask.success`) and termination (:meth:`ShapedTask.failed`);
* optionally, reward relabelling (``supports_relabel = True``): the reward is a function of the physics
  state (qpos, qvel, act, ctrl) and of :meth:`ShapedTask.episode_parameters` alone, so the replay stores
  those per control step and a fine-tuned run recomputes its own task's reward on them.
"""
from __future__ import annotations

import collections
import functools
import inspect
import os
from typing import Dict, Mapping, Optional, Tuple

import mujoco
import numpy as np
from dm_control.mujoco import Physics
from dm_control.rl import control
from dm_control.suite import base as suite_base
from dm_env import specs

from . import scene as scene_lib
from .errors import TaskError

REWARD_RULES = ("weighted_sum", "product", "staged")
_USER_METHODS = ("bind", "observe", "compute_terms", "success", "failed", "initialize_episode")
_TERM_SLACK = 1e-6  # Float round-off allowed outside [0, 1] before a term counts as invalid.


def combine_terms(terms: Mapping[str, float], order: Tuple[str, ...], rule: str,
                  scales: Optional[Mapping[str, float]] = None, stage_threshold: float = 0.9) -> float:
    """Combines reward terms (each in ``[0, 1]``) into one reward in ``[0, 1]``.

    Args:
        terms: Term name -> value in ``[0, 1]``.
        order: Term names in declaration order (the stage order for ``staged``).
        rule: ``weighted_sum`` (``sum_i w_i t_i / sum_i w_i``), ``product`` (gating: ``prod_i t_i``) or
            ``staged`` (``(k + t_k) / n`` where ``k`` counts the leading terms ``>= stage_threshold``,
            at most ``n - 1``: each completed stage is worth ``1 / n``).
        scales: Term name -> non-negative weight (``weighted_sum`` only).
        stage_threshold: Value a stage term must reach before the next stage counts (``staged`` only).

    Returns:
        The reward, a float in ``[0, 1]``.
    """
    values = [float(terms[name]) for name in order]
    if rule == "weighted_sum":
        if scales is None:
            raise TaskError("reward rule 'weighted_sum' needs scales for every term")
        weights = np.array([scales[name] for name in order], dtype=np.float64)
        return float(np.dot(weights, values) / weights.sum())
    if rule == "product":
        return float(np.prod(values))
    if rule == "staged":
        stage = 0
        while stage < len(values) - 1 and values[stage] >= stage_threshold:
            stage += 1
        return (stage + values[stage]) / len(values)
    raise TaskError(f"unknown reward rule {rule!r}; allowed: {', '.join(REWARD_RULES)}")


def _explain_key_errors(method):
    """Turns a KeyError from ``physics.named[...]`` inside a task method into a TaskError listing names."""

    @functools.wraps(method)
    def wrapper(self, physics, *args, **kwargs):
        try:
            return method(self, physics, *args, **kwargs)
        except KeyError as err:
            key = str(err.args[0]) if err.args else "?"
            known = {kind: [n for n in scene_lib.names_of(physics.model, kind) if n]
                     for kind in ("body", "site", "joint", "geom", "camera", "actuator")}
            listing = "; ".join(f"{scene_lib.plural(kind)}: {', '.join(names) or '(none)'}"
                                for kind, names in known.items())
            raise TaskError(f"{inspect.getfile(type(self))}: unknown name {key!r} in {method.__name__}(); "
                            f"available {listing}") from err

    return wrapper


class ShapedTask(suite_base.Task):
    """Base class of every ezrobot task (a ``dm_control`` task with named, validated reward terms).

    Subclasses set the class attributes below and implement :meth:`build_scene`, :meth:`observe`,
    :meth:`compute_terms` and :meth:`initialize_episode` (optionally :meth:`bind`, :meth:`success`,
    :meth:`failed`). Constructor keyword arguments of a subclass are the task's parameters
    (``tasks.load(name, **params)``).

    Attributes:
        name: Registry name (a user task file defaults to its file name without ``.py``).
        tags: Registry tags, e.g. ``("robot", "reach")``.
        reward_terms: Names of the reward terms, in order (the stage order for ``staged``).
        reward_rule: ``weighted_sum``, ``product`` or ``staged`` (see :func:`combine_terms`).
        scales: Inline term scales for ``weighted_sum`` when no ``configs/task/<name>.yaml`` (registered
            tasks) or ``<task file>.yaml`` (user files) exists.
        stage_threshold: Value a stage term must reach before the next stage counts (``staged``).
        default_camera: Camera name used for pixel observations and videos.
        default_action_repeat: Control steps per agent step suggested to the environment adapter.
        control_timestep: Seconds per control (simulator) step; a multiple of the model timestep.
        time_limit: Episode length in seconds (``time_limit / control_timestep`` control steps).
        action_mode: ``absolute`` (action -> ctrlrange) or ``delta`` (action moves the control target).
        delta_fraction: ``delta`` mode: fraction of the ctrlrange width that an action of 1 moves the
            control per control step.
        supports_relabel: The reward reads only qpos, qvel, act, ctrl and :meth:`episode_parameters`, so
            transitions of another task with the same model can be relabelled with this task's reward.
    """

    name: str = ""
    tags: Tuple[str, ...] = ()
    reward_terms: Tuple[str, ...] = ()
    reward_rule: str = "weighted_sum"
    scales: Optional[Dict[str, float]] = None
    stage_threshold: float = 0.9
    default_camera: str = ""
    default_action_repeat: int = 2
    control_timestep: float = 0.02
    time_limit: float = 10.0
    action_mode: str = "absolute"
    delta_fraction: float = 0.02
    supports_relabel: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _USER_METHODS:
            if name in cls.__dict__:
                setattr(cls, name, _explain_key_errors(cls.__dict__[name]))

    def __init__(self, random=None):
        super().__init__(random=random)
        self.source_file = os.path.abspath(inspect.getfile(type(self)))
        self.resolved_scales: Optional[Dict[str, float]] = None
        self.episode_time_limit = float(self.time_limit)
        self.last_reward_terms: Dict[str, float] = {t: 0.0 for t in self.reward_terms}
        self.last_success = False
        self._ctrl_low = np.zeros(0)
        self._ctrl_high = np.zeros(0)
        self._actuator_names: Tuple[str, ...] = ()

    # ----------------------------------------------------------------- to implement in subclasses
    def build_scene(self) -> mujoco.MjSpec:
        """Returns the scene as an editable ``mujoco.MjSpec`` (see ``tasks.scene`` for loaders)."""
        raise NotImplementedError(f"{self.source_file}: {type(self).__name__} must define build_scene()")

    def bind(self, physics: Physics) -> None:
        """Called once after the scene compiled: look names up with ``scene.require`` here."""

    def observe(self, physics: Physics) -> Mapping[str, np.ndarray]:
        """Returns the proprio features by name (arrays or floats)."""
        raise NotImplementedError(f"{self.source_file}: {type(self).__name__} must define observe()")

    def compute_terms(self, physics: Physics) -> Mapping[str, float]:
        """Returns every declared reward term by name, each in ``[0, 1]``."""
        raise NotImplementedError(f"{self.source_file}: {type(self).__name__} must define compute_terms()")

    def success(self, physics: Physics) -> bool:
        """Success criterion of the current state (override to declare one)."""
        return False

    def failed(self, physics: Physics) -> bool:
        """Whether the episode terminates in the current state (override to declare a termination)."""
        return False

    def episode_parameters(self, physics: Physics) -> np.ndarray:
        """What the episode randomised outside the physics state that the reward reads (e.g. the index of
        the episode's target), as floats; stored beside the state for reward relabelling."""
        return np.zeros(0)

    def set_episode_parameters(self, physics: Physics, values: np.ndarray) -> None:
        """Apply :meth:`episode_parameters` output (of this task or a variant of it) to ``physics``."""

    # ----------------------------------------------------------------- contract used by the adapter
    @property
    def has_success(self) -> bool:
        """True when the subclass declares a success criterion."""
        return type(self).success is not ShapedTask.success

    def make_physics(self) -> Physics:
        """Builds, compiles and validates the scene; binds names and the action mapping."""
        physics = scene_lib.compile_physics(self.build_scene(), self.source_file)
        cameras = scene_lib.names_of(physics.model, mujoco.mjtObj.mjOBJ_CAMERA)
        if self.default_camera not in cameras:
            raise TaskError(f"{self.source_file}: unknown camera {self.default_camera!r} in default_camera; "
                            f"available: {', '.join(cameras) or '(none)'}")
        self._bind_actuators(physics)
        self.bind(physics)
        return physics

    def _bind_actuators(self, physics: Physics) -> None:
        model = physics.model
        if model.nu == 0:
            raise TaskError(f"{self.source_file}: the scene has no actuators; a task needs at least one")
        names = scene_lib.names_of(model, mujoco.mjtObj.mjOBJ_ACTUATOR)
        unlimited = [names[i] for i in range(model.nu) if not model.actuator_ctrllimited[i]]
        if unlimited:
            raise TaskError(f"{self.source_file}: actuators {unlimited} have no ctrlrange; the [-1, 1] action "
                            "mapping needs ctrlrange (set ctrllimited='true' ctrlrange='lo hi')")
        if self.action_mode not in ("absolute", "delta"):
            raise TaskError(f"{self.source_file}: action_mode={self.action_mode!r} is not allowed; use "
                            "'absolute' or 'delta'")
        if self.action_mode == "delta" and not 0.0 < float(self.delta_fraction) <= 1.0:
            raise TaskError(f"{self.source_file}: delta_fraction={self.delta_fraction!r} must be in (0, 1]")
        self._ctrl_low = model.actuator_ctrlrange[:, 0].copy()
        self._ctrl_high = model.actuator_ctrlrange[:, 1].copy()
        self._actuator_names = tuple(names)

    def action_spec(self, physics: Physics) -> specs.BoundedArray:
        """One action in ``[-1, 1]`` per actuator, in actuator order."""
        n = len(self._ctrl_low)
        return specs.BoundedArray((n,), np.float64, -np.ones(n), np.ones(n), name="\t".join(self._actuator_names))

    def before_step(self, action, physics: Physics) -> None:
        """Validates ``action`` [A] in ``[-1, 1]`` and maps it linearly onto the actuators' ctrlrange."""
        action = np.asarray(getattr(action, "continuous_actions", action), dtype=np.float64)
        if action.shape != self._ctrl_low.shape:
            raise TaskError(f"{self.source_file}: action has shape {action.shape}, expected "
                            f"({len(self._ctrl_low)},): one value in [-1, 1] per actuator {list(self._actuator_names)}")
        if not np.all(np.isfinite(action)):
            raise TaskError(f"{self.source_file}: action contains non-finite values {action.tolist()}")
        action = np.clip(action, -1.0, 1.0)
        width = self._ctrl_high - self._ctrl_low
        if self.action_mode == "delta":
            target = np.asarray(physics.data.ctrl) + action * self.delta_fraction * width
            physics.set_control(np.clip(target, self._ctrl_low, self._ctrl_high))
        else:
            physics.set_control(self._ctrl_low + 0.5 * (action + 1.0) * width)

    def controls_to_joints(self, physics: Physics) -> None:
        """Set each joint-driven actuator's control to its joint's position (clipped to the ctrlrange), so
        that position servos hold the initial pose; other actuators get the middle of their range."""
        model = physics.model
        ctrl = 0.5 * (self._ctrl_low + self._ctrl_high)
        for i in range(model.nu):
            if model.actuator_trntype[i] == mujoco.mjtTrn.mjTRN_JOINT:
                ctrl[i] = physics.data.qpos[model.jnt_qposadr[model.actuator_trnid[i, 0]]]
        physics.data.ctrl[:] = np.clip(ctrl, self._ctrl_low, self._ctrl_high)

    def get_observation(self, physics: Physics) -> "collections.OrderedDict[str, np.ndarray]":
        """Proprio observation: :meth:`observe` as an OrderedDict of float64 arrays."""
        obs = collections.OrderedDict()
        for key, value in self.observe(physics).items():
            obs[key] = np.array(value, dtype=np.float64).reshape(-1)
            if not np.all(np.isfinite(obs[key])):
                raise TaskError(f"{self.source_file}: observation {key!r} is not finite: {obs[key].tolist()}")
        return obs

    def get_reward(self, physics: Physics) -> float:
        """Computes, validates and combines the reward terms; records them and the success flag."""
        terms = self.compute_terms(physics)
        missing = [t for t in self.reward_terms if t not in terms]
        extra = [t for t in terms if t not in self.reward_terms]
        if missing or extra:
            raise TaskError(f"{self.source_file}: compute_terms() returned terms {sorted(terms)}, but "
                            f"reward_terms declares {list(self.reward_terms)} (missing {missing}, undeclared {extra})")
        checked = {}
        for term in self.reward_terms:
            value = float(terms[term])
            if not np.isfinite(value) or value < -_TERM_SLACK or value > 1.0 + _TERM_SLACK:
                raise TaskError(f"{self.source_file}: reward term {term!r} = {value!r} is outside [0, 1] or not "
                                "finite; build terms with dm_control.utils.rewards.tolerance")
            checked[term] = min(max(value, 0.0), 1.0)
        self.last_reward_terms = checked
        self.last_success = bool(self.success(physics))
        return combine_terms(checked, self.reward_terms, self.reward_rule, self.resolved_scales,
                             self.stage_threshold)

    def get_termination(self, physics: Physics) -> Optional[float]:
        """Discount 0 when :meth:`failed` says the episode ends, else ``None`` (continue)."""
        return 0.0 if self.failed(physics) else None

    def initialize_episode(self, physics: Physics) -> None:
        """Clears the per-step records; subclasses randomise the state, then call this."""
        self.last_reward_terms = {t: 0.0 for t in self.reward_terms}
        self.last_success = False
        if self.action_mode == "delta":
            self.controls_to_joints(physics)
        super().initialize_episode(physics)


def make_environment(task: ShapedTask, time_limit: Optional[float] = None) -> control.Environment:
    """Compiles ``task``'s scene and wraps both in a ``dm_control.rl.control.Environment``.

    Args:
        task: A constructed task with ``resolved_scales`` set (see ``tasks.load``).
        time_limit: Episode length in seconds (``None``: the task's ``time_limit``).

    Returns:
        The environment; its episode has ``time_limit / task.control_timestep`` control steps.
    """
    physics = task.make_physics()
    limit = task.time_limit if time_limit is None else float(time_limit)
    if not limit > 0:
        raise TaskError(f"{task.source_file}: time_limit must be > 0 seconds, got {limit!r}")
    task.episode_time_limit = limit
    step = task.control_timestep / physics.timestep()
    if abs(step - round(step)) > 1e-6 or round(step) < 1:
        raise TaskError(f"{task.source_file}: control_timestep {task.control_timestep} is not a positive multiple "
                        f"of the model timestep {physics.timestep()}")
    return control.Environment(physics, task, time_limit=limit, control_timestep=task.control_timestep)
