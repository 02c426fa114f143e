"""manipulator_bring_ball: the dm_control suite's planar manipulator brings a ball to a target.

Scene: the suite's ``manipulator.xml`` (a 4-joint planar arm with a two-finger hand), with the peg, slot
and cup bodies removed. The ball starts on the floor, the target floats in the arm's workspace.
Reward: weighted sum of ``reach`` (grasp site at the ball) and ``bring`` (ball at the target), scales in
``configs/task/manipulator_bring_ball.yaml``. Success: ball within 3 cm of the target.
Episode: 10 s = 1000 control steps of 10 ms (500 agent steps at the default action repeat 2).
"""
from __future__ import annotations

import numpy as np
from dm_control.utils import rewards

from . import scene as scene_lib
from .base import ShapedTask

ARM_JOINTS = ("arm_root", "arm_shoulder", "arm_elbow", "arm_wrist", "finger", "fingertip", "thumb", "thumbtip")
REMOVED_BODIES = ("peg", "slot", "cup", "target_peg")
TOUCH_SENSORS = ("palm_touch", "finger_touch", "thumb_touch", "fingertip_touch", "thumbtip_touch")
SUCCESS_DISTANCE = 0.03
_MAX_PLACEMENT_TRIES = 100


class BringBall(ShapedTask):
    """Bring the ball to the target with the planar manipulator."""

    name = "manipulator_bring_ball"
    tags = ("robot", "manipulation", "planar")
    reward_terms = ("reach", "bring")
    reward_rule = "weighted_sum"
    default_camera = "fixed"
    default_action_repeat = 2
    control_timestep = 0.01
    time_limit = 10.0

    def build_scene(self):
        spec = scene_lib.load_xml(scene_lib.dm_control_asset("suite", "manipulator.xml"))
        for name in REMOVED_BODIES:
            spec.delete(spec.body(name))
        return spec

    def bind(self, physics) -> None:
        src, model = self.source_file, physics.model
        joints = [scene_lib.require(physics, "joint", name, src) for name in ARM_JOINTS]
        self._arm_qpos = np.array([model.jnt_qposadr[j] for j in joints])
        self._arm_qvel = np.array([model.jnt_dofadr[j] for j in joints])
        self._arm_limited = np.array([bool(model.jnt_limited[j]) for j in joints])
        self._arm_range = np.array([model.jnt_range[j] for j in joints])
        ball = [scene_lib.require(physics, "joint", name, src) for name in ("ball_x", "ball_z", "ball_y")]
        self._ball_qpos = np.array([model.jnt_qposadr[j] for j in ball])
        self._ball_qvel = np.array([model.jnt_dofadr[j] for j in ball])
        self._grasp = scene_lib.require(physics, "site", "grasp", src)
        self._ball = scene_lib.require(physics, "site", "ball", src)
        self._target = scene_lib.require(physics, "site", "target_ball", src)
        self._target_body = scene_lib.require(physics, "body", "target_ball", src)
        for name in TOUCH_SENSORS:
            physics.named.data.sensordata[name]  # raises KeyError early if a sensor is missing

    def initialize_episode(self, physics) -> None:
        for _ in range(_MAX_PLACEMENT_TRIES):
            angles = self.random.uniform(-np.pi, np.pi, size=len(self._arm_qpos))
            low, high = self._arm_range[:, 0], self._arm_range[:, 1]
            angles = np.where(self._arm_limited, self.random.uniform(low, high), angles)
            physics.data.qpos[self._arm_qpos] = angles
            physics.data.qpos[self._ball_qpos] = [self.random.uniform(-0.4, 0.4), 0.022, 0.0]
            physics.data.qvel[:] = 0.0
            physics.after_reset()
            if physics.data.ncon == 0:
                break
        target = [self.random.uniform(-0.4, 0.4), 0.001, self.random.uniform(0.1, 0.4)]
        physics.model.body_pos[self._target_body] = target
        physics.forward()
        super().initialize_episode(physics)

    def observe(self, physics):
        angles = physics.data.qpos[self._arm_qpos]
        ball = physics.data.site_xpos[self._ball]
        grasp = physics.data.site_xpos[self._grasp]
        target = physics.data.site_xpos[self._target]
        return {
            "arm_pos": np.concatenate([np.sin(angles), np.cos(angles)]),
            "arm_vel": physics.data.qvel[self._arm_qvel],
            "touch": np.log1p(physics.named.data.sensordata[list(TOUCH_SENSORS)]),
            "hand_pos": grasp[[0, 2]],
            "ball_pos": ball[[0, 2]],
            "ball_vel": physics.data.qvel[self._ball_qvel],
            "target_pos": target[[0, 2]],
            "hand_to_ball": (ball - grasp)[[0, 2]],
            "ball_to_target": (target - ball)[[0, 2]],
        }

    def _distances(self, physics):
        ball = physics.data.site_xpos[self._ball]
        reach = np.linalg.norm(ball - physics.data.site_xpos[self._grasp])
        bring = np.linalg.norm(physics.data.site_xpos[self._target] - ball)
        return reach, bring

    def compute_terms(self, physics):
        reach, bring = self._distances(physics)
        return {
            "reach": rewards.tolerance(reach, bounds=(0, 0.02), margin=0.3, value_at_margin=0.1),
            "bring": rewards.tolerance(bring, bounds=(0, 0.02), margin=0.3, value_at_margin=0.1),
        }

    def success(self, physics) -> bool:
        return bool(self._distances(physics)[1] < SUCCESS_DISTANCE)
