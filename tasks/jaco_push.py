"""jaco_push: push a block across the floor to a goal with the Kinova Jaco arm.

Three position servos (base yaw, shoulder, elbow), wrist locked straight, hand closed. The block starts
in front of the arm; the goal lies to its left or right. Reward: staged — first ``reach`` (hand at the
block), then ``push`` (block at the goal); each finished stage is worth 1/2. Success: block centre
within 5 cm of the goal. Episode: 10 s = 500 control steps.

Parameters (``tasks.load("jaco_push", **params)``, ``+env.gym_kwargs.<name>=<value>`` in a run): changed
dynamics as factors (``tasks.variants``): ``mass_scale``, ``friction_scale``, ``gain_scale`` and
``damping_scale`` of the arm and the block (a heavier or stickier block, a weaker arm). The reward supports
relabelling (the episode's goal side is stored with the state).
"""
from __future__ import annotations

import os

import mujoco
import numpy as np
from dm_control.utils import rewards

from . import robots
from . import scene as scene_lib
from . import variants
from .base import ShapedTask

_PI = np.pi
SERVOS = {"joint_1": (_PI - 1.0, _PI + 1.0), "joint_2": (_PI - 0.2, _PI + 1.4), "joint_3": (_PI - 2.4, _PI - 0.2)}
LOCKED = {"joint_4": 0.0, "joint_5": 0.0, "joint_6": 0.0}
HOME = np.array([_PI, _PI + 0.4, _PI - 1.4])
BLOCK_HALF_SIZE = 0.025
BLOCK_START = np.array([0.55, 0.0])
GOAL_OFFSET_Y = 0.22
SUCCESS_DISTANCE = 0.05
SCENE_XML = os.path.join(os.path.dirname(__file__), "arm_scene.xml")


class JacoPush(ShapedTask):
    """Push a block to a goal on the floor."""

    name = "jaco_push"
    tags = ("robot", "push", "arm")
    reward_terms = ("reach", "push")
    reward_rule = "staged"
    stage_threshold = 0.9
    default_camera = "front"
    default_action_repeat = 2
    control_timestep = 0.02
    time_limit = 10.0
    supports_relabel = True

    def __init__(self, random=None, mass_scale: float = 1.0, friction_scale: float = 1.0, gain_scale: float = 1.0,
                 damping_scale: float = 1.0):
        super().__init__(random=random)
        self.dynamics = {name: variants.check_scale(self.source_file, name, value) for name, value in
                         zip(variants.SCALES, (mass_scale, friction_scale, gain_scale, damping_scale))}
        self._side = 1.0

    def build_scene(self):
        scene = scene_lib.load_xml(SCENE_XML)
        robots.attach_robot(scene, robots.jaco_spec(SERVOS, LOCKED), robots.JACO_PREFIX)
        block = scene.worldbody.add_body(name="block", pos=[BLOCK_START[0], BLOCK_START[1], BLOCK_HALF_SIZE])
        block.add_freejoint(name="block")
        block.add_geom(name="block", type=mujoco.mjtGeom.mjGEOM_BOX, size=[BLOCK_HALF_SIZE] * 3, mass=0.2,
                       rgba=[0.95, 0.7, 0.1, 1.0], friction=[0.6, 0.005, 0.0001])
        return scene

    def bind(self, physics) -> None:
        src = self.source_file
        self._goal = scene_lib.require(physics, "site", "target", src)
        self._grip = scene_lib.require(physics, "site", robots.JACO_GRIP_SITE, src)
        self._block = scene_lib.require(physics, "body", "block", src)
        block_joint = scene_lib.require(physics, "joint", "block", src)
        self._block_qpos = physics.model.jnt_qposadr[block_joint]
        self._block_qvel = physics.model.jnt_dofadr[block_joint]
        joints = [scene_lib.require(physics, "joint", robots.JACO_PREFIX + name, src) for name in SERVOS]
        self._qpos = np.array([physics.model.jnt_qposadr[j] for j in joints])
        self._qvel = np.array([physics.model.jnt_dofadr[j] for j in joints])
        bodies = [b for b, name in enumerate(scene_lib.names_of(physics.model, "body"))
                  if name.startswith(robots.JACO_PREFIX) or name == "block"]
        variants.scale_dynamics(physics.model, bodies, **self.dynamics)

    def initialize_episode(self, physics) -> None:
        physics.data.qpos[self._qpos] = HOME + self.random.uniform(-0.1, 0.1, size=3)
        physics.data.qvel[:] = 0.0
        start = BLOCK_START + self.random.uniform(-0.03, 0.03, size=2)
        yaw = self.random.uniform(-0.3, 0.3)
        physics.data.qpos[self._block_qpos:self._block_qpos + 7] = [start[0], start[1], BLOCK_HALF_SIZE,
                                                                     np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        self.set_episode_parameters(physics, [1.0 if self.random.uniform() < 0.5 else -1.0])
        physics.forward()
        super().initialize_episode(physics)

    def episode_parameters(self, physics) -> np.ndarray:
        """[1]: the side of the episode's goal (+1 left, -1 right)."""
        return np.array([self._side])

    def set_episode_parameters(self, physics, values) -> None:
        self._side = 1.0 if float(values[0]) >= 0 else -1.0
        physics.model.site_pos[self._goal] = [BLOCK_START[0], self._side * GOAL_OFFSET_Y, 0.005]

    def _block_pos(self, physics) -> np.ndarray:
        return physics.data.xpos[self._block]

    def observe(self, physics):
        block = self._block_pos(physics)
        grip = physics.data.site_xpos[self._grip]
        goal = physics.data.site_xpos[self._goal]
        return {
            "joint_pos": physics.data.qpos[self._qpos],
            "joint_vel": physics.data.qvel[self._qvel],
            "hand_pos": grip,
            "block_pos": block,
            "block_quat": physics.data.qpos[self._block_qpos + 3:self._block_qpos + 7],
            "block_vel": physics.data.qvel[self._block_qvel:self._block_qvel + 3],
            "hand_to_block": block - grip,
            "block_to_goal": goal[:2] - block[:2],
        }

    def compute_terms(self, physics):
        block = self._block_pos(physics)
        reach = np.linalg.norm(block - physics.data.site_xpos[self._grip])
        push = np.linalg.norm(physics.data.site_xpos[self._goal][:2] - block[:2])
        return {
            "reach": rewards.tolerance(reach, bounds=(0, 0.06), margin=0.5, value_at_margin=0.1),
            "push": rewards.tolerance(push, bounds=(0, 0.02), margin=0.3, value_at_margin=0.1),
        }

    def success(self, physics) -> bool:
        block = self._block_pos(physics)
        return bool(np.linalg.norm(physics.data.site_xpos[self._goal][:2] - block[:2]) < SUCCESS_DISTANCE)
