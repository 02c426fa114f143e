"""ant_walk: the quadruped ant (gymnasium's MuJoCo ``ant.xml``) walks forward along +x.

Eight hip/ankle motors (ctrlrange [-1, 1]). Reward: product (gating) of ``upright`` (torso z-axis
pointing up) and ``move`` (``(1 + 5 * speed_term) / 6``, the speed term reaching 1 at >= 1 m/s), so
the ant earns nothing while flipped over and a sixth of the reward for standing still upright.
Episode: 10 s = 500 control steps of 20 ms; terminates when the torso flips upside down.
"""
from __future__ import annotations

import numpy as np
from dm_control.utils import rewards

from . import scene as scene_lib
from .base import ShapedTask

TARGET_SPEED = 1.0
INIT_HEIGHT = 0.6
INIT_NOISE = 0.1


class AntWalk(ShapedTask):
    """Walk forward with the ant."""

    name = "ant_walk"
    tags = ("robot", "legged", "locomotion")
    reward_terms = ("upright", "move")
    reward_rule = "product"
    default_camera = "track"
    default_action_repeat = 2
    control_timestep = 0.02
    time_limit = 10.0

    def build_scene(self):
        return scene_lib.load_xml(scene_lib.gymnasium_asset("ant.xml"))

    def bind(self, physics) -> None:
        src, model = self.source_file, physics.model
        self._torso = scene_lib.require(physics, "body", "torso", src)
        root = scene_lib.require(physics, "joint", "root", src)
        self._root_qpos = model.jnt_qposadr[root]
        self._root_qvel = model.jnt_dofadr[root]
        legs = [j for j in range(model.njnt) if j != root]
        self._leg_qpos = np.array([model.jnt_qposadr[j] for j in legs])
        self._leg_mid = np.array([model.jnt_range[j].mean() for j in legs])

    def initialize_episode(self, physics) -> None:
        physics.data.qpos[:] = 0.0
        yaw = self.random.uniform(-INIT_NOISE, INIT_NOISE)
        physics.data.qpos[self._root_qpos:self._root_qpos + 7] = [0.0, 0.0, INIT_HEIGHT, np.cos(yaw / 2), 0.0, 0.0,
                                                                   np.sin(yaw / 2)]
        physics.data.qpos[self._leg_qpos] = self._leg_mid + self.random.uniform(-INIT_NOISE, INIT_NOISE,
                                                                                size=len(self._leg_qpos))
        physics.data.qvel[:] = INIT_NOISE * self.random.standard_normal(physics.model.nv)
        physics.forward()
        super().initialize_episode(physics)

    def _up(self, physics) -> float:
        return float(physics.data.xmat[self._torso][8])  # z component of the torso's z axis

    def forward_speed(self, physics) -> float:
        """Torso velocity along +x in m/s."""
        return float(physics.data.qvel[self._root_qvel])

    def observe(self, physics):
        return {
            "height": physics.data.qpos[self._root_qpos + 2],
            "orientation": physics.data.qpos[self._root_qpos + 3:self._root_qpos + 7],
            "joint_pos": physics.data.qpos[self._leg_qpos],
            "velocity": physics.data.qvel,
        }

    def compute_terms(self, physics):
        upright = rewards.tolerance(self._up(physics), bounds=(0.9, 1.0), margin=0.9, sigmoid="linear",
                                    value_at_margin=0.0)
        speed = rewards.tolerance(self.forward_speed(physics), bounds=(TARGET_SPEED, float("inf")),
                                  margin=TARGET_SPEED, sigmoid="linear", value_at_margin=0.5)
        return {"upright": upright, "move": (1.0 + 5.0 * speed) / 6.0}

    def failed(self, physics) -> bool:
        return self._up(physics) < 0.0
