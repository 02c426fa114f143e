"""jaco_reach: bring the Kinova Jaco's hand to one of four fixed, reachable targets.

The simplest robot task (tags ``robot``, ``reach``): three position servos (base yaw, shoulder, elbow),
wrist locked straight, dense smooth reward, episode of 5 s = 250 control steps (63 agent steps at the
default action repeat 4). Success: the grip site within 5 cm of the target at the end of the episode.
Train it with ``experiment=robot_proprio`` (README: seeds 0/1/2 at 50k env steps).

What the 50k-env-step budget needed (measured with ``experiment=robot_proprio``, README):
- Action repeat 4 (12.5 decisions per second). At repeat 2 the same agent (delta 2%,
  ~12k updates) ended at 0.0-0.2 success at 40k-50k env steps; at repeat 4, 0.7.
- Delta control at 1% of the range per control step (``DELTA_FRACTION``): a decision moves a servo
  target by at most 0.056-0.088 rad, half of what 2% gave at repeat 4, so the hand jitters less around
  the target; reaching a target still takes about a second. Final checkpoints over 40 episodes (seed 0):
  2% 0.725 success, 1% 0.90.
- ``precise`` with a 10 cm margin and the weight of ``near``: with 6 cm, the reward was flat between 8
  and 15 cm (``near`` is 0.93-0.98 there) and the lowest target was never reached.
- The observations ``log_distance`` and ``direction``. Without them seed 1 ended each episode at a fixed
  offset per target, 4-8 cm away (0.25 success over 40 episodes; 0.55 with the ``inside`` term alone):
  ``to_target`` in metres changes by 0.03 over the last 3 cm, next to joint angles of ~3 rad, too little
  for the small MLP to resolve. With both, seed 1: 0.95.
- ``inside``: a step term, 1 within the success radius, so the reward says what success means.
- Episodes of 5 s instead of 10 s: twice the episodes (approaches) in the same env steps. At 50k env
  steps, 40 episodes each: seed 0 0.125 -> 0.675, seed 2 0.35 -> 0.95.
- The observation ``command_to_target``: target minus where the servo targets put the hand (forward
  kinematics at the commanded joint angles; the bodies are gravity-compensated). Distance-over-time traces
  (seed 1) showed the hand within 5 cm of the target in every failed episode before it wandered off:
  holding needs the value to tell apart servo-target moves that show in the hand only ~1 s later. With
  ``robot_proprio``'s discount 0.97, seeds 0/1/2 (40 episodes): 0.925 / 0.675 / 0.975 -> 1.0 / 0.925 / 1.0.
With absolute servo targets, the policy's sampling noise (std >= 0.1 of the range) moved the hand by
about 5 cm, the size of the success radius: 10-25% success at 50k env steps.

Parameters (``tasks.load("jaco_reach", **params)``):
    robot: ``"jaco"`` (dm_control's Kinova Jaco) or ``"menagerie:<name>[/<entry>]"`` for any MuJoCo
        Menagerie arm (honours ``MENAGERIE_ROOT``); Menagerie arms keep their own actuators (which need
        a ctrlrange) and get targets sampled once from their workspace with a fixed seed.
    ee_site: End-effector site of a Menagerie arm (default: origin of the deepest body).
    num_targets: How many of the fixed targets episodes draw from (1..16).
    delta_fraction: Servo-target move per control step for an action of 1, as a fraction of the range.
    obstacle: A fixed sphere (radius 5 cm, on a mocap body) that collides with the arm, placed each
        episode between the hand's start and the target (``OBSTACLE_AT`` of the way), so the hand has to go
        around it. It clears the start pose; an agent trained without it hits it in 6 of 8 episodes and
        scores 96 instead of 208 (jaco_reach seed 0 at 50k env steps).
    mass_scale, friction_scale, gain_scale, damping_scale: Changed dynamics (``tasks.variants``): the
        robot's link masses and inertias (the links stay gravity-compensated, so a heavier arm is slower to
        accelerate), its geoms' friction, the servos' gain and the joints' damping, each as a factor.
    target_offset: [3] metres added to every target (a moved target region).

Variants are these parameters (``+env.gym_kwargs.obstacle=true``, ``+env.gym_kwargs.mass_scale=2.0``):
the observation and action specs stay those of ``jaco_reach``, so a trained agent can be fine-tuned on any
of them, and the reward supports relabelling (the episode's target index is stored with the state).
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
from .errors import TaskError

_PI = np.pi
JACO_SERVOS = {"joint_1": (_PI - 1.0, _PI + 1.0), "joint_2": (_PI - 0.2, _PI + 1.2), "joint_3": (_PI - 2.4, _PI - 0.2)}
JACO_LOCKED = {"joint_4": 0.0, "joint_5": 0.0, "joint_6": 0.0}
JACO_HOME = np.array([_PI, _PI + 0.4, _PI - 1.4])
# Joint configurations whose grip-site positions are the targets (reachable by construction).
JACO_TARGET_POSES = np.array([[_PI - 0.6, _PI + 0.6, _PI - 1.4], [_PI + 0.6, _PI + 0.6, _PI - 1.4],
                              [_PI - 0.3, _PI + 0.6, _PI - 1.8], [_PI + 0.3, _PI + 0.3, _PI - 1.0]])
SUCCESS_DISTANCE = 0.05
NEAR_MARGIN = 0.5  # m: pulls the hand in from the start (28-37 cm away)
PRECISE_MARGIN = 0.1  # m: a slope from 12 cm in (0.06 left the 8-15 cm band flat)
DELTA_FRACTION = 0.01
LOG_DISTANCE_OFFSET = 0.01  # m: keeps log(distance) finite at the target
INIT_NOISE = 0.1
SCENE_XML = os.path.join(os.path.dirname(__file__), "arm_scene.xml")
OBSTACLE_RADIUS = 0.05  # m
OBSTACLE_AT = 0.5  # fraction of the way from the hand's start to the target


class ArmReach(ShapedTask):
    """Reach a fixed target with the grip of an arm (Jaco by default, or a Menagerie arm)."""

    name = "jaco_reach"
    tags = ("robot", "reach", "arm")
    reward_terms = ("near", "precise", "inside", "still")
    reward_rule = "weighted_sum"
    default_camera = "front"
    default_action_repeat = 4
    control_timestep = 0.02
    time_limit = 5.0  # s: reaching takes 1-2 s; 10 s episodes spent 80% of the budget holding still
    action_mode = "delta"
    delta_fraction = DELTA_FRACTION
    supports_relabel = True

    def __init__(self, random=None, robot: str = "jaco", ee_site: str = "", num_targets: int = 4,
                 delta_fraction: float = DELTA_FRACTION, obstacle: bool = False, mass_scale: float = 1.0,
                 friction_scale: float = 1.0, gain_scale: float = 1.0, damping_scale: float = 1.0,
                 target_offset=(0.0, 0.0, 0.0)):
        super().__init__(random=random)
        self.delta_fraction = float(delta_fraction)  # checked against (0, 1] when the scene is built
        if not isinstance(obstacle, bool):
            raise TaskError(f"{self.source_file}: obstacle={obstacle!r} must be true or false")
        self.obstacle = obstacle
        self.dynamics = {name: variants.check_scale(self.source_file, name, value) for name, value in
                         zip(variants.SCALES, (mass_scale, friction_scale, gain_scale, damping_scale))}
        self.target_offset = variants.check_vector(self.source_file, "target_offset", target_offset, 3)
        self._episode_target = 0
        if robot != "jaco" and not robot.startswith(scene_lib.MENAGERIE_PREFIX):
            raise TaskError(f"{self.source_file}: robot={robot!r} is not allowed; use 'jaco' or "
                            "'menagerie:<name>[/<entry>]'")
        if not 1 <= int(num_targets) <= 16:
            raise TaskError(f"{self.source_file}: num_targets={num_targets!r} must be in 1..16")
        self.robot, self.ee_site, self.num_targets = robot, ee_site, int(num_targets)
        self._prefix = robots.JACO_PREFIX if robot == "jaco" else "robot/"
        self.targets = np.zeros((0, 3))

    def build_scene(self):
        scene = scene_lib.load_xml(SCENE_XML)
        if self.robot == "jaco":
            arm = robots.jaco_spec(JACO_SERVOS, JACO_LOCKED)
        else:
            arm = scene_lib.menagerie_spec(self.robot)
        robots.attach_robot(scene, arm, self._prefix)
        if self.obstacle:
            variants.add_obstacle(scene, "obstacle", OBSTACLE_RADIUS)
        return scene

    def bind(self, physics) -> None:
        model = physics.model
        self._target = scene_lib.require(physics, "site", "target", self.source_file)
        robot_bodies = [b for b, name in enumerate(scene_lib.names_of(model, "body")) if name.startswith(self._prefix)]
        variants.scale_dynamics(model, robot_bodies, **self.dynamics)
        joints = [j for j, name in enumerate(scene_lib.names_of(model, "joint"))
                  if name.startswith(self._prefix) and model.jnt_type[j] in (2, 3)]  # slide, hinge
        if not joints:
            raise TaskError(f"{self.source_file}: robot {self.robot!r} has no hinge or slide joints")
        self._qpos = np.array([model.jnt_qposadr[j] for j in joints])
        self._qvel = np.array([model.jnt_dofadr[j] for j in joints])
        ranges = robots.joint_ranges(model, joints)
        self._low = np.array([ranges[j][0] for j in joints])
        self._high = np.array([ranges[j][1] for j in joints])
        if self.robot == "jaco":
            self._ee = ("site", scene_lib.require(physics, "site", robots.JACO_GRIP_SITE, self.source_file))
            self._home, poses = JACO_HOME.copy(), JACO_TARGET_POSES[: self.num_targets]
        else:
            if self.ee_site:
                self._ee = ("site", scene_lib.require(physics, "site", self._prefix + self.ee_site, self.source_file))
            else:
                self._ee = ("body", robots.end_effector_body(model))
            self._home = np.clip(np.asarray(model.qpos0)[self._qpos], self._low, self._high)
            poses = self._sample_poses(physics)
        self.targets = np.array([self._forward_kinematics(physics, q) for q in poses]) + self.target_offset
        self._start = self._forward_kinematics(physics, self._home)
        self._obstacle = None
        if self.obstacle:
            body = scene_lib.require(physics, "body", "obstacle", self.source_file)
            self._obstacle = int(model.body_mocapid[body])
        self._servo_qpos = self._servo_joints(physics, joints)
        self._scratch = mujoco.MjData(model.ptr)

    def _servo_joints(self, physics, joints):
        """qpos addresses [nu] of the ``joints`` that the actuators drive as position servos (control =
        joint angle), or None when some actuator is not one (then ``command_to_target`` is not observed)."""
        model, addresses = physics.model, []
        for i in range(model.nu):
            joint = int(model.actuator_trnid[i, 0])
            kp = model.actuator_gainprm[i, 0]
            servo = (model.actuator_trntype[i] == mujoco.mjtTrn.mjTRN_JOINT and joint in joints
                     and model.actuator_gear[i, 0] == 1.0 and kp > 0.0 and model.actuator_biasprm[i, 1] == -kp)
            if not servo:
                return None
            addresses.append(int(model.jnt_qposadr[joint]))
        return np.array(addresses)

    def commanded_position(self, physics) -> np.ndarray:
        """[3] where the end effector settles once the servos reach their targets: forward kinematics of
        the current pose with every servoed joint at its control (the bodies are gravity-compensated)."""
        data = self._scratch
        data.qpos[:] = physics.data.qpos
        data.qpos[self._servo_qpos] = physics.data.ctrl
        mujoco.mj_kinematics(physics.model.ptr, data)
        return self._ee_xpos(data).copy()

    def _sample_poses(self, physics) -> np.ndarray:
        """Joint configurations (fixed seed) whose end effector is above the floor and spread apart."""
        rng, poses, points = np.random.RandomState(0), [], []
        for _ in range(500):
            q = self._low + (0.25 + 0.5 * rng.uniform(size=len(self._low))) * (self._high - self._low)
            p = self._forward_kinematics(physics, q)
            if p[2] > 0.05 and all(np.linalg.norm(p - other) > 0.05 for other in points):
                poses.append(q)
                points.append(p)
            if len(poses) == self.num_targets:
                return np.array(poses)
        raise TaskError(f"{self.source_file}: found only {len(poses)} reachable targets above the floor for "
                        f"robot {self.robot!r}; lower num_targets or pass ee_site")

    def _forward_kinematics(self, physics, q: np.ndarray) -> np.ndarray:
        physics.data.qpos[self._qpos] = q
        physics.forward()
        return self._ee_pos(physics).copy()

    def _ee_pos(self, physics) -> np.ndarray:
        return self._ee_xpos(physics.data)

    def _ee_xpos(self, data) -> np.ndarray:
        """[3] the end effector's world position in `data` (the physics' data or the scratch `MjData`)."""
        kind, index = self._ee
        return data.site_xpos[index] if kind == "site" else data.xpos[index]

    def initialize_episode(self, physics) -> None:
        noise = self.random.uniform(-INIT_NOISE, INIT_NOISE, size=len(self._home))
        physics.data.qpos[self._qpos] = np.clip(self._home + noise, self._low, self._high)
        physics.data.qvel[self._qvel] = 0.0
        self._set_target(physics, self.random.randint(len(self.targets)))
        physics.forward()
        super().initialize_episode(physics)

    def _set_target(self, physics, index: int) -> None:
        """Put the episode's target (and the obstacle in front of it) at target ``index``."""
        self._episode_target = int(index)
        physics.model.site_pos[self._target] = self.targets[self._episode_target]
        if self._obstacle is not None:
            target = self.targets[self._episode_target]
            physics.data.mocap_pos[self._obstacle] = self._start + OBSTACLE_AT * (target - self._start)

    def episode_parameters(self, physics) -> np.ndarray:
        """[1]: the index of the episode's target (a variant maps it to its own, possibly moved, target)."""
        return np.array([float(self._episode_target)])

    def set_episode_parameters(self, physics, values) -> None:
        self._set_target(physics, int(round(float(values[0]))) % len(self.targets))

    def to_target(self, physics) -> np.ndarray:
        """Vector [3] from the end effector to the target."""
        return physics.data.site_xpos[self._target] - self._ee_pos(physics)

    def distance(self, physics) -> float:
        """Distance (m) from the end effector to the target."""
        return float(np.linalg.norm(self.to_target(physics)))

    def observe(self, physics):
        to_target = self.to_target(physics)
        distance = float(np.linalg.norm(to_target))
        obs = {
            "joint_pos": physics.data.qpos[self._qpos],
            "joint_vel": physics.data.qvel[self._qvel],
            "hand_pos": self._ee_pos(physics),
            "target_pos": physics.data.site_xpos[self._target],
            "to_target": to_target,
            "servo_target": physics.data.ctrl,
            # The last centimetres, resolved: log(d + 1 cm) moves by ~0.7 between 5 and 2 cm, where
            # ``to_target`` (metres) moves by 0.03 next to joint angles of ~3 rad.
            "log_distance": np.array([np.log(distance + LOG_DISTANCE_OFFSET)]),
            "direction": to_target / (distance + 1e-6),
        }
        if self._servo_qpos is not None:
            # Where the servo targets put the hand: in delta mode an action moves this point for good, so
            # a value that reads it needs no forward kinematics of its own (README: jaco_reach).
            obs["command_to_target"] = physics.data.site_xpos[self._target] - self.commanded_position(physics)
        return obs

    def compute_terms(self, physics):
        distance = self.distance(physics)
        speed = float(np.linalg.norm(physics.data.qvel[self._qvel]))
        return {
            "near": rewards.tolerance(distance, bounds=(0, 0.02), margin=NEAR_MARGIN, value_at_margin=0.1),
            "precise": rewards.tolerance(distance, bounds=(0, 0.02), margin=PRECISE_MARGIN, value_at_margin=0.1),
            "inside": rewards.tolerance(distance, bounds=(0, SUCCESS_DISTANCE), margin=0.0),
            "still": rewards.tolerance(speed, bounds=(0, 0.1), margin=1.0, value_at_margin=0.1),
        }

    def success(self, physics) -> bool:
        return bool(self.distance(physics) < SUCCESS_DISTANCE)

