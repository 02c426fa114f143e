"""Task variants as parameters: changed dynamics (link masses, friction, actuator gain, joint damping) and
props (an obstacle), applied to a compiled model or an ``MjSpec`` by a task's initialiser and ``bind``, so a
variant is ``tasks.load(name, mass_scale=2.0)`` (``+env.gym_kwargs.mass_scale=2.0`` in a run's config), never
a copy of the task file."""
from __future__ import annotations

import math
from typing import Sequence

import mujoco
import numpy as np

from .errors import TaskError

SCALES = ("mass_scale", "friction_scale", "gain_scale", "damping_scale")
"""The dynamics parameters :func:`scale_dynamics` applies (1.0: unchanged)."""


def check_scale(source: str, name: str, value) -> float:
    """``value`` as a float, or TaskError naming the parameter when it is not a finite number > 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise TaskError(f"{source}: {name}={value!r} must be a finite number > 0 (1.0: unchanged)")
    return number


def check_vector(source: str, name: str, value, size: int) -> np.ndarray:
    """``value`` as a float array of ``size`` finite entries, or TaskError naming the parameter."""
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.shape != (size,) or not np.all(np.isfinite(array)):
        raise TaskError(f"{source}: {name}={value!r} must be a list of {size} finite numbers")
    return array


def scale_dynamics(model, bodies: Sequence[int], *, mass_scale: float = 1.0, friction_scale: float = 1.0,
                   gain_scale: float = 1.0, damping_scale: float = 1.0) -> None:
    """Scale, in place on a compiled model: the mass and inertia of ``bodies``, the friction of their geoms
    and the damping of their joints, and the gain of every position or motor actuator (a position servo's
    ``kp`` in both its gain and its bias, so it stays a servo)."""
    raw = getattr(model, "ptr", model)
    bodies = np.asarray(list(bodies), np.int64)
    raw.body_mass[bodies] *= mass_scale
    raw.body_inertia[bodies] *= mass_scale
    geoms = np.flatnonzero(np.isin(raw.geom_bodyid, bodies))
    raw.geom_friction[geoms] *= friction_scale
    joints = np.flatnonzero(np.isin(raw.jnt_bodyid, bodies))
    for j in joints:
        raw.dof_damping[raw.jnt_dofadr[j]] *= damping_scale
    raw.actuator_gainprm[:, 0] *= gain_scale
    raw.actuator_biasprm[:, 1] *= gain_scale


def add_obstacle(spec: mujoco.MjSpec, name: str, radius: float) -> None:
    """A sphere geom ``name`` on a mocap body ``name`` that collides with the robot, moved per episode through
    ``data.mocap_pos``. (A geom of the world body cannot be moved: MuJoCo caches the bounding boxes of static
    bodies at compile time, so a world geom moved through ``model.geom_pos`` never collides again.)"""
    body = spec.worldbody.add_body(name=name, mocap=True, pos=[0.0, 0.0, -1.0])
    body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[radius, 0, 0], contype=1, conaffinity=1,
                  rgba=[0.5, 0.5, 0.55, 1.0])
