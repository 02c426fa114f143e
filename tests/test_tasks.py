"""Tests of the task API, the registry, the robot scenes, Menagerie loading and ``ezrobot tasks list``."""
from __future__ import annotations

import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ezrobot import tasks  # noqa: E402
from ezrobot.tasks import combine_terms  # noqa: E402
from ezrobot.commands.tasks import main as tasks_main  # noqa: E402
from task_example import task_example_source  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
ROLLOUT_STEPS = 6


def _rollout(name: str, seed: int, steps: int = ROLLOUT_STEPS):
    env = tasks.load(name, seed=seed)
    rng = np.random.RandomState(123)
    first = env.reset()
    observations = [np.concatenate(list(first.observation.values()))]
    rewards, terms = [], []
    for _ in range(steps):
        action = rng.uniform(-1.0, 1.0, size=env.action_spec().shape)
        step = env.step(action)
        observations.append(np.concatenate(list(step.observation.values())))
        rewards.append(step.reward)
        terms.append(dict(env.task.last_reward_terms))
    return env, first, np.array(observations), np.array(rewards), terms


# ------------------------------------------------------------------------------------ registry contract
def test_registry_has_four_robot_tasks_and_a_reach_task():
    robot = tasks.list_tasks("robot")
    assert len(robot) >= 4
    assert "jaco_reach" in [info.name for info in tasks.list_tasks("reach")]
    assert {info.name for info in robot} == set(tasks.BUILTIN_TASKS)


@pytest.mark.parametrize("name", sorted(tasks.BUILTIN_TASKS))
def test_task_contract(name):
    env, first, observations, rewards, terms = _rollout(name, seed=3)
    task, info = env.task, tasks.task_info(name)
    # Spec matches the observations, which are finite.
    spec = env.observation_spec()
    assert list(spec) == list(first.observation)
    for key, value in first.observation.items():
        assert value.shape == spec[key].shape and value.dtype == spec[key].dtype, key
    assert observations.shape[1] == info.obs_dim
    assert np.all(np.isfinite(observations))
    # Actions in [-1, 1], one per actuator.
    action_spec = env.action_spec()
    assert action_spec.shape == (info.action_dim,) == (env.physics.model.nu,)
    assert np.all(action_spec.minimum == -1.0) and np.all(action_spec.maximum == 1.0)
    # Reward terms in [0, 1], reward in [0, 1].
    assert np.all((rewards >= 0.0) & (rewards <= 1.0))
    for step_terms in terms:
        assert tuple(step_terms) == task.reward_terms
        assert all(0.0 <= v <= 1.0 and np.isfinite(v) for v in step_terms.values())
    assert isinstance(task.last_success, bool) and task.has_success == info.has_success
    assert task.default_action_repeat >= 1
    # Same seed: identical rollout. Different seed: different initial state.
    _, _, observations_again, rewards_again, _ = _rollout(name, seed=3)
    np.testing.assert_array_equal(observations, observations_again)
    np.testing.assert_array_equal(rewards, rewards_again)
    other = tasks.load(name, seed=4).reset()
    assert not np.allclose(observations[0], np.concatenate(list(other.observation.values())))
    # Pixels from the default camera.
    frame = env.physics.render(height=24, width=32, camera_id=task.default_camera)
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8 and frame.std() > 0


def test_episode_length_from_time_limit_and_control_timestep():
    env = tasks.load("jaco_reach", seed=0, time_limit=0.1)
    env.reset()
    steps = 0
    while not env.step(np.zeros(3)).last():
        steps += 1
    assert steps + 1 == round(0.1 / env.task.control_timestep) == 5
    assert tasks.task_info("jaco_reach").episode_steps == 250


def test_jaco_reach_targets_are_reachable_and_succeed():
    from ezrobot.tasks.arm_reach import JACO_SERVOS, JACO_TARGET_POSES

    env = tasks.load("jaco_reach", seed=0)
    low = np.array([r[0] for r in JACO_SERVOS.values()])
    high = np.array([r[1] for r in JACO_SERVOS.values()])
    step_size = env.task.delta_fraction * (high - low)  # delta control: servo-target move per unit action
    for index, pose in enumerate(JACO_TARGET_POSES):
        env.reset()
        env.physics.model.site_pos[env.task._target] = env.task.targets[index]
        for _ in range(150):
            step = env.step(np.clip((pose - env.physics.data.ctrl) / step_size, -1.0, 1.0))
        assert env.task.last_success, index
        assert step.reward > 0.9
        obs = step.observation  # the distance features agree with to_target
        distance = np.linalg.norm(obs["to_target"])
        np.testing.assert_allclose(obs["log_distance"], [np.log(distance + 0.01)])
        np.testing.assert_allclose(obs["direction"] * distance, obs["to_target"], atol=1e-5)
        assert np.exp(obs["log_distance"][0]) - 0.01 < 0.05 and env.task.last_reward_terms["inside"] == 1.0
    env.reset()
    assert not env.task.last_success


def test_delta_control_starts_at_the_pose_and_integrates_actions():
    env = tasks.load("jaco_reach", seed=1)
    env.reset()
    physics, task = env.physics, env.task
    start = physics.data.ctrl.copy()
    np.testing.assert_allclose(start, physics.data.qpos[task._qpos], atol=1e-12)
    env.step(np.zeros(3))
    np.testing.assert_allclose(physics.data.ctrl, start)
    env.step(np.array([1.0, -1.0, 0.5]))
    width = task._ctrl_high - task._ctrl_low
    np.testing.assert_allclose(physics.data.ctrl, start + np.array([1.0, -1.0, 0.5]) * task.delta_fraction * width)
    np.testing.assert_allclose(env.task.observe(physics)["servo_target"], physics.data.ctrl)


def test_jaco_reach_command_to_target_is_where_the_servos_point():
    env = tasks.load("jaco_reach", seed=2)
    step = env.reset()
    # At the start the servos hold the pose: the commanded point is the hand.
    np.testing.assert_allclose(step.observation["command_to_target"], step.observation["to_target"], atol=1e-9)
    for _ in range(3):
        step = env.step(np.array([1.0, -0.5, 0.8]))
    physics, task = env.physics, env.task
    # Independent forward kinematics: a second copy of the scene posed at the servo targets.
    other = tasks.load("jaco_reach", seed=2)
    other.reset()
    other.physics.data.qpos[:] = physics.data.qpos
    other.physics.data.qpos[task._qpos] = physics.data.ctrl
    other.physics.forward()
    target = physics.data.site_xpos[task._target]
    np.testing.assert_allclose(step.observation["command_to_target"], target - other.task._ee_pos(other.physics),
                               atol=1e-9)
    assert np.linalg.norm(step.observation["command_to_target"] - step.observation["to_target"]) > 0.01
    np.testing.assert_array_equal(task._servo_qpos, task._qpos)  # the three servos drive the three joints


# ------------------------------------------------------------------------------------ reward rules
def test_combine_rules():
    order = ("a", "b")
    terms = {"a": 1.0, "b": 0.5}
    assert combine_terms(terms, order, "weighted_sum", {"a": 3.0, "b": 1.0}) == pytest.approx(3.5 / 4)
    assert combine_terms(terms, order, "product") == pytest.approx(0.5)
    assert combine_terms({"a": 0.5, "b": 1.0}, order, "staged", stage_threshold=0.9) == pytest.approx(0.25)
    assert combine_terms({"a": 0.95, "b": 0.2}, order, "staged", stage_threshold=0.9) == pytest.approx(0.6)
    with pytest.raises(tasks.TaskError, match="unknown reward rule 'max'"):
        combine_terms(terms, order, "max")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4), st.sampled_from(["weighted_sum", "product", "staged"]),
       st.lists(st.floats(0.01, 10.0), min_size=4, max_size=4))
def test_combined_reward_stays_in_unit_interval(values, rule, weights):
    order = tuple(f"t{i}" for i in range(len(values)))
    reward = combine_terms(dict(zip(order, values)), order, rule, dict(zip(order, weights)))
    assert 0.0 <= reward <= 1.0 + 1e-12


# ------------------------------------------------------------------------------------ README example
def _readme_example() -> str:
    return task_example_source()


@pytest.fixture
def example_file(tmp_path):
    path = tmp_path / "ball_reach.py"
    path.write_text(_readme_example())
    return path


def test_readme_example_runs_verbatim(example_file):
    env = tasks.load(str(example_file), seed=0)
    info = tasks.task_info(str(example_file))
    assert info.name == "ball_reach" and info.reward_terms == ("near", "slow") and info.has_success
    env.reset()
    step = None
    for _ in range(250):
        to_goal = env.task.to_goal(env.physics)
        step = env.step(np.clip(10 * to_goal - 2 * env.physics.data.qvel, -1, 1))
    assert step.last() and env.task.last_success and step.reward > 0.95
    assert env.task.resolved_scales == {"near": 1.0, "slow": 0.2}


def test_user_scales_yaml_next_to_file(example_file):
    example_file.with_suffix(".yaml").write_text("scales:\n  near: 2.0\n  slow: 2.0\n")
    assert tasks.load(str(example_file)).task.resolved_scales == {"near": 2.0, "slow": 2.0}
    example_file.with_suffix(".yaml").write_text("scales:\n  near: 1.0\n  slow: 1.0\n  fast: 1.0\n")
    with pytest.raises(tasks.TaskError, match=r"ball_reach.yaml: scale 'fast' has no reward term; terms: near, slow"):
        tasks.load(str(example_file))
    example_file.with_suffix(".yaml").write_text("scales:\n  near: [1\n")
    with pytest.raises(tasks.TaskError, match=r"ball_reach.yaml: YAML parse error at line \d"):
        tasks.load(str(example_file))


# ------------------------------------------------------------------------------------ validation errors
def _variant(tmp_path, old: str, new: str, name: str = "variant.py"):
    source = _readme_example()
    assert old in source
    path = tmp_path / name
    path.write_text(source.replace(old, new))
    return str(path)


def test_term_without_scale_and_scale_without_term(example_file):
    with pytest.raises(tasks.TaskError, match="reward term 'slow' has no scale; scales needed for: near, slow"):
        tasks.load(str(example_file), scales={"near": 1.0})
    with pytest.raises(tasks.TaskError, match="scale 'extra' has no reward term"):
        tasks.load(str(example_file), scales={"near": 1.0, "slow": 1.0, "extra": 1.0})
    with pytest.raises(tasks.TaskError, match=r"scale near=-1.0 must be a finite number >= 0"):
        tasks.load(str(example_file), scales={"near": -1.0, "slow": 1.0})


def test_unknown_names_are_listed(tmp_path):
    path = _variant(tmp_path, 'site_xpos["goal"]', 'site_xpos["gaol"]')
    with pytest.raises(tasks.TaskError, match=r"variant.py: unknown name 'gaol' in observe\(\).*sites: goal"):
        tasks.load(path, seed=0).reset()
    path = _variant(tmp_path, 'default_camera = "top"', 'default_camera = "side"')
    with pytest.raises(tasks.TaskError, match=r"variant.py: unknown camera 'side' in default_camera; available: top"):
        tasks.load(path)
    env = tasks.load("jaco_reach")
    with pytest.raises(tasks.TaskError, match=r"unknown site 'tip'; available sites: mount, target"):
        tasks.scene.require(env.physics, "site", "tip", "x.py")


def test_xml_parse_error_names_file_and_line(tmp_path):
    path = _variant(tmp_path, '<geom type="sphere" size=".03" mass=".1"/>', '<geom type="sphere" size="big"/>')
    bad_line = 1 + open(path).read().split('size="big"')[0].count("\n")
    with pytest.raises(tasks.TaskError, match=rf"variant.py: MJCF parse error in the task's XML \(line {bad_line} of "
                                              r"variant.py\).*bad format in attribute 'size'; Element 'geom', line 4"):
        tasks.load(path)
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco>\n<worldbody>\n<body>\n</worldbody>\n</mujoco>\n")
    with pytest.raises(tasks.TaskError, match=r"broken.xml: MJCF parse error.*Line number=3"):
        tasks.scene.load_xml(str(broken))


def test_bad_terms_are_caught_every_step(tmp_path):
    path = _variant(tmp_path, 'margin=1.0)}', 'margin=1.0) * 2}')
    env = tasks.load(path, seed=0)
    env.reset()
    with pytest.raises(tasks.TaskError, match=r"variant.py: reward term 'slow' = 2.0 is outside \[0, 1\]"):
        env.step(np.zeros(2))
    path = _variant(tmp_path, 'margin=1.0)}', 'margin=1.0) * float("nan")}', "nan.py")
    env = tasks.load(path, seed=0)
    env.reset()
    with pytest.raises(tasks.TaskError, match=r"nan.py: reward term 'slow' = nan .*not finite"):
        env.step(np.zeros(2))
    path = _variant(tmp_path, '"slow": rewards', '"slower": rewards', "renamed.py")
    env = tasks.load(path, seed=0)
    env.reset()
    with pytest.raises(tasks.TaskError, match=r"missing \['slow'\], undeclared \['slower'\]"):
        env.step(np.zeros(2))


def test_action_dimension_mismatch_and_unknown_inputs(example_file):
    env = tasks.load(str(example_file), seed=0)
    env.reset()
    with pytest.raises(tasks.TaskError, match=r"action has shape \(3,\), expected \(2,\)"):
        env.step(np.zeros(3))
    with pytest.raises(tasks.TaskError, match="unknown task 'jaco_rech'. Did you mean 'jaco_reach'"):
        tasks.load("jaco_rech")
    with pytest.raises(tasks.TaskError, match=r"unknown task parameter\(s\) \['speed'\]; allowed: robot, ee_site"):
        tasks.load("jaco_reach", speed=2)
    with pytest.raises(tasks.TaskError, match="robot='ur5' is not allowed"):
        tasks.load("jaco_reach", robot="ur5")


# ------------------------------------------------------------------------------------ Menagerie
def test_menagerie_robot_from_menagerie_root(monkeypatch):
    monkeypatch.setenv("MENAGERIE_ROOT", os.path.join(FIXTURES, "menagerie"))
    env = tasks.load("jaco_reach", seed=0, robot="menagerie:dynamixel_2r", ee_site="tip")
    assert env.action_spec().shape == (2,)
    assert env.task.targets.shape == (4, 3) and np.all(env.task.targets[:, 2] > 0.05)
    step = env.reset()  # its position actuators are servos, so the commanded point is observed too
    np.testing.assert_allclose(step.observation["command_to_target"], step.observation["to_target"], atol=1e-9)
    for _ in range(5):
        env.step(np.array([0.3, -0.3]))
    assert set(env.task.last_reward_terms) == {"near", "precise", "inside", "still"}
    with pytest.raises(tasks.TaskError, match="not found under MENAGERIE_ROOT"):
        tasks.load("jaco_reach", robot="menagerie:universal_robots_ur5e")
    with pytest.raises(tasks.TaskError, match="Unknown robot 'dynamixel_2rr'. Did you mean 'dynamixel_2r'"):
        tasks.load("jaco_reach", robot="menagerie:dynamixel_2rr")


def test_menagerie_fetch_failure_is_clear(monkeypatch, tmp_path):
    monkeypatch.delenv("MENAGERIE_ROOT", raising=False)
    monkeypatch.setenv("MENAGERIE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MENAGERIE_BASE_URL", (tmp_path / "no_mirror").as_uri())
    with pytest.raises(tasks.TaskError, match=r"could not fetch Menagerie model 'trossen_wx250s'.*MENAGERIE_ROOT"):
        tasks.load("jaco_reach", robot="menagerie:trossen_wx250s")


# ------------------------------------------------------------------------------------ CLI
def test_tasks_list_cli(capsys):
    assert tasks_main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name", "tags", "obs", "action_dim", "reward_terms"} <= set(rows[0])
    assert sum("robot" in row["tags"] for row in rows) >= 4
    reach = next(row for row in rows if row["name"] == "jaco_reach")
    assert reach["obs"] == 25 and reach["action_dim"] == 3 and reach["reward_terms"] == ["near", "precise", "inside", "still"]
    assert tasks_main(["list", "--tag", "reach"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["name", "tags", "obs"] and len(table) == 2 and table[1].startswith("jaco_reach")
    assert tasks_main(["list", "--tag", "nosuchtag"]) == 2
    assert "tags in use" in capsys.readouterr().err
