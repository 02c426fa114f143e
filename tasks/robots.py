"""Robot models shared by the arm tasks: the Kinova Jaco arm shipped with dm_control, Menagerie arms.

The Jaco arm (``dm_control/third_party/kinova``) ships without actuators; :func:`jaco_spec` adds
position servos on the chosen joints (``ctrlrange`` in radians, the task maps actions in ``[-1, 1]``
onto it), locks the other arm joints at fixed angles, fixes the three-finger hand closed and enables
gravity compensation, as the real arm's firmware does.
"""
from __future__ import annotations

from typing import Dict, Mapping, Tuple

import mujoco
import numpy as np

from . import scene as scene_lib
from .errors import TaskError

JACO_JOINTS = ("joint_1", "joint_2", "joint_3", "joint_4", "joint_5", "joint_6")
_JACO_MAX_TORQUE = {"joint_1": 30.5, "joint_2": 30.5, "joint_3": 30.5,
                    "joint_4": 6.8, "joint_5": 6.8, "joint_6": 6.8}
_JACO_KP = {"joint_1": 120.0, "joint_2": 120.0, "joint_3": 120.0, "joint_4": 25.0, "joint_5": 25.0, "joint_6": 25.0}
JACO_PREFIX = "jaco/"
JACO_GRIP_SITE = "jaco/hand/gripsite"


def jaco_spec(servos: Mapping[str, Tuple[float, float]], locked: Mapping[str, float]) -> mujoco.MjSpec:
    """The Jaco arm with its hand, position servos on ``servos`` and the other joints locked.

    Args:
        servos: Joint name -> ``(low, high)`` servo target range in radians (becomes the ctrlrange).
        locked: Joint name -> fixed angle in radians; every Jaco joint is in exactly one of the two.

    Returns:
        An ``MjSpec`` of arm + hand (hand joints removed), bodies gravity-compensated.
    """
    unknown = sorted((set(servos) | set(locked)) - set(JACO_JOINTS))
    if unknown or set(servos) & set(locked) or set(servos) | set(locked) != set(JACO_JOINTS):
        raise TaskError(f"Jaco joints must be split between servos and locked; got servos {sorted(servos)}, "
                        f"locked {sorted(locked)}; joints: {', '.join(JACO_JOINTS)}")
    arm = scene_lib.load_xml(scene_lib.dm_control_asset("third_party", "kinova", "jaco_arm.xml"))
    hand = scene_lib.load_xml(scene_lib.dm_control_asset("third_party", "kinova", "jaco_hand.xml"))
    for joint in list(hand.joints):
        hand.delete(joint)
    arm.attach(hand, prefix="hand/", site=arm.site("wristsite"))
    for name, angle in locked.items():
        scene_lib.lock_hinge(arm, name, angle)
    for name, (low, high) in servos.items():
        if not low < high:
            raise TaskError(f"Jaco servo range for {name} must have low < high, got ({low}, {high})")
        joint = arm.joint(name)
        joint.damping = [8.0 if _JACO_KP[name] > 50 else 1.5, 0.0, 0.0]
        actuator = arm.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_position(kp=_JACO_KP[name])
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.ctrlrange = [low, high]
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = [-_JACO_MAX_TORQUE[name], _JACO_MAX_TORQUE[name]]
    for body in arm.bodies:
        body.gravcomp = 1.0
    return arm


def attach_robot(scene: mujoco.MjSpec, robot: mujoco.MjSpec, prefix: str) -> None:
    """Attaches ``robot`` at the scene's ``mount`` site with names prefixed by ``prefix``."""
    mount = scene.site("mount")
    if mount is None:
        raise TaskError(f"the scene has no site 'mount' to attach the robot; sites: {[s.name for s in scene.sites]}")
    scene.attach(robot, prefix=prefix, site=mount)


def end_effector_body(model) -> int:
    """Id of the deepest body below the world (the end of the longest kinematic chain)."""
    raw = getattr(model, "ptr", model)
    depth = np.zeros(raw.nbody, dtype=np.int64)
    for body in range(1, raw.nbody):
        depth[body] = depth[raw.body_parentid[body]] + 1
    return int(np.argmax(depth))


def joint_ranges(model, joint_ids) -> Dict[int, Tuple[float, float]]:
    """``(low, high)`` per joint id: the joint range when limited, else ``(-pi, pi)``."""
    raw = getattr(model, "ptr", model)
    return {j: (tuple(raw.jnt_range[j]) if raw.jnt_limited[j] else (-np.pi, np.pi)) for j in joint_ids}
