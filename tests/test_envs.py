"""Environment adapter contract: dm_control suite (all tasks), pixels, registered tasks, errors, rendering."""
import dataclasses
import sys
import time

import numpy as np
import pytest

from ezrobot.envs import EnvConfig, EnvError, EnvSpec, make_env
from ezrobot.envs import rendering
from ezrobot.envs.wrappers import ActionRescaler, FrameStack

from dm_control import suite  # noqa: E402  (after envs: conftest already chose MUJOCO_GL)


def _random_action(spec: EnvSpec, rng: np.random.Generator):
    if spec.action_type == "discrete":
        return int(rng.integers(spec.num_actions))
    return rng.uniform(-1.0, 1.0, spec.num_actions).astype(np.float32)


def _check_obs(obs, spec: EnvSpec):
    assert obs.shape == spec.obs_shape
    assert obs.dtype == np.dtype(spec.obs_dtype)
    if not spec.is_pixels:
        assert np.all(np.isfinite(obs))


# ----------------------------------------------------------------------------------------------- DMC
@pytest.mark.parametrize("domain,task", suite.ALL_TASKS, ids=[f"{d}-{t}" for d, t in suite.ALL_TASKS])
def test_dmc_proprio_contract_every_suite_task(domain, task):
    env, spec = make_env(f"dmc/{domain}-{task}", EnvConfig(), seed=0, train=True)
    assert env.spec is spec and spec.action_type == "continuous" and spec.obs_dtype == "float32"
    assert spec.frame_stack == 1 and spec.action_repeat == 2 and spec.max_episode_steps == 500
    assert spec.discount == pytest.approx(0.99)
    obs, info = env.reset()
    _check_obs(obs, spec)
    rng = np.random.default_rng(0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(_random_action(spec, rng))
        _check_obs(obs, spec)
        assert np.isfinite(reward) and info["env_steps"] == 2
        assert isinstance(terminated, bool) and isinstance(truncated, bool)
    env.close()


def test_dmc_alias_and_flatten_order():
    _, cup_spec = make_env("dmc/cup-catch", EnvConfig(), seed=1, train=True)
    assert cup_spec.name == "dmc/ball_in_cup-catch"
    env, spec = make_env("dmc/walker-walk", EnvConfig(), seed=1, train=True)
    obs, _ = env.reset()
    raw = env.unwrapped.task.get_observation(env.unwrapped.physics)
    expected = np.concatenate([np.asarray(raw[k], np.float32).ravel() for k in sorted(raw)])
    np.testing.assert_array_equal(obs, expected)
    assert sorted(raw) != list(raw)  # walker's dict is not sorted: the order really is chosen


@pytest.mark.parametrize("task,size,gray,repeat,camera", [
    ("dmc/cartpole-swingup", 84, False, 8, 0),
    ("dmc/quadruped-walk", 64, False, 2, 2),
    ("dmc/cup-catch", 96, True, 4, 0),
])
def test_dmc_pixels_shape_stack_and_defaults(task, size, gray, repeat, camera):
    cfg = EnvConfig(obs_type="pixels", image_size=size, grayscale=gray, render_preset="fast")
    env, spec = make_env(task, cfg, seed=0, train=True)
    c = 1 if gray else 3
    assert spec.obs_shape == (3 * c, size, size) and spec.obs_dtype == "uint8" and spec.frame_stack == 3
    assert spec.action_repeat == repeat and spec.max_episode_steps == 1000 // repeat
    assert env._opts.camera == camera
    obs, _ = env.reset()
    _check_obs(obs, spec)
    assert np.array_equal(obs[:c], obs[c:2 * c]) and np.array_equal(obs[:c], obs[2 * c:])
    rng = np.random.default_rng(0)
    prev = obs
    for _ in range(3):
        obs, _, _, _, info = env.step(_random_action(spec, rng))
        _check_obs(obs, spec)
        assert info["env_steps"] == repeat
        np.testing.assert_array_equal(obs[:2 * c], prev[c:])  # oldest first, newest appended
        prev = obs
    assert not np.array_equal(obs[:c], obs[2 * c:])  # the scene moved
    env.close()


def test_dmc_action_repeat_accounting_over_an_episode():
    env, spec = make_env("dmc/cartpole-swingup", EnvConfig(action_repeat=8), seed=0, train=True)
    assert spec.max_episode_steps == 125
    env.reset()
    total_steps, t, done = 0, 0, False
    while not done:
        _, _, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        total_steps += info["env_steps"]
        t += 1
        done = terminated or truncated
    assert (t, total_steps, terminated, truncated) == (125, 1000, False, True)
    with pytest.raises(EnvError, match="before reset"):
        env.step(np.zeros(1, np.float32))
    env3, spec3 = make_env("dmc/walker-walk", EnvConfig(action_repeat=3), seed=0, train=True)
    env3.reset()
    assert spec3.max_episode_steps == 333 and env3.step(np.zeros(6))[4]["env_steps"] == 3


def test_dmc_reward_is_summed_over_the_repeat():
    cfg1, cfg4 = EnvConfig(action_repeat=1), EnvConfig(action_repeat=4)
    env1, _ = make_env("dmc/cartpole-balance", cfg1, seed=5, train=True)
    env4, _ = make_env("dmc/cartpole-balance", cfg4, seed=5, train=True)
    o1, _ = env1.reset()
    o4, _ = env4.reset()
    np.testing.assert_array_equal(o1, o4)
    action = np.array([0.3], np.float32)
    summed = sum(env1.step(action)[1] for _ in range(4))
    obs4, reward4, *_ = env4.step(action)
    assert reward4 == pytest.approx(summed)
    np.testing.assert_allclose(obs4, env1._flatten(env1.unwrapped.task.get_observation(
        env1.unwrapped.physics)))


def test_dmc_seeding_is_deterministic():
    env, _ = make_env("dmc/reacher-easy", EnvConfig(), seed=7, train=True)
    first, _ = env.reset()  # uses the make_env seed
    again, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    env2, _ = make_env("dmc/reacher-easy", EnvConfig(), seed=7, train=True)
    np.testing.assert_array_equal(env2.reset()[0], first)


def test_dmc_actions_map_onto_spec_bounds():
    env, spec = make_env("dmc/cartpole-swingup", EnvConfig(action_repeat=1), seed=0, train=True)
    env.reset()
    env.step(np.array([1.0], np.float32))
    assert env.unwrapped.physics.data.ctrl[0] == pytest.approx(1.0)
    env.step(np.array([5.0], np.float32))  # clipped to the upper bound
    assert env.unwrapped.physics.data.ctrl[0] == pytest.approx(1.0)
    with pytest.raises(EnvError, match=r"expected \(1,\)"):
        env.step(np.zeros(2))
    with pytest.raises(EnvError, match="non-finite"):
        env.step(np.array([np.nan]))
    rescale = ActionRescaler([-2.0, 0.0], [2.0, 10.0])
    np.testing.assert_allclose(rescale([-1.0, 1.0]), [-2.0, 10.0])
    np.testing.assert_allclose(rescale([0.0, 0.0]), [0.0, 5.0])


def test_dmc_render_sizes_and_fast_preset_changes_pixels():
    env_d, _ = make_env("dmc/walker-walk", EnvConfig(), seed=0, train=True)
    env_f, _ = make_env("dmc/walker-walk", EnvConfig(render_preset="fast"), seed=0, train=True)
    env_d.reset()
    env_f.reset()
    img_d, img_f = env_d.render(), env_f.render()
    assert img_d.shape == (240, 320, 3) and img_d.dtype == np.uint8
    assert env_d.render(camera="1", height=48, width=64).shape == (48, 64, 3)
    assert not np.array_equal(img_d, img_f)
    assert np.abs(img_d.astype(int) - img_f.astype(int)).mean() < 40  # same scene, cheaper effects


def test_fast_aa_preset_keeps_multisampling_and_drops_shadows():
    images = {}
    for preset in ("default", "fast", "fast_aa"):
        env, _ = make_env("dmc/cartpole-balance", EnvConfig(obs_type="pixels", image_size=64, frame_stack=1,
                                                            render_preset=preset), seed=0, train=True)
        images[preset], _ = env.reset(seed=0)
        env.close()
    assert not np.array_equal(images["fast_aa"], images["default"])  # no shadows
    assert not np.array_equal(images["fast_aa"], images["fast"])  # multisampled edges
    colours = {k: len(np.unique(v.reshape(3, -1).T, axis=0)) for k, v in images.items()}
    assert colours["fast_aa"] > colours["fast"]  # antialiasing blends edge pixels into new colours
    with pytest.raises(EnvError, match="render_preset='faster'.*default, fast, fast_aa"):
        make_env("dmc/cartpole-balance", EnvConfig(render_preset="faster"), seed=0, train=True)


def test_action_planes_carry_the_action_that_led_to_each_frame():
    cfg = EnvConfig(obs_type="pixels", image_size=64, frame_stack=3, render_preset="fast", action_planes=True)
    env, spec = make_env("dmc/walker-walk", cfg, seed=0, train=True)  # D = 6 actions
    plain, _ = make_env("dmc/walker-walk", dataclasses.replace(cfg, action_planes=False), seed=0, train=True)
    assert spec.obs_shape == (3 * (3 + 6), 64, 64) and spec.frame_stack == 3
    obs, _ = env.reset(seed=0)
    ref, _ = plain.reset(seed=0)
    frames = obs.reshape(3, 9, 64, 64)
    assert np.all(frames[:, 3:] == 128)  # after a reset: the zero action
    np.testing.assert_array_equal(frames[:, :3].reshape(9, 64, 64), ref)  # images unchanged
    actions = [np.linspace(-1, 1, 6), np.full(6, 0.5), np.array([2.0, -2.0, 0, 0, 0, 0])]
    for a in actions:
        obs, *_ = env.step(a)
        ref, *_ = plain.step(a)
    frames = obs.reshape(3, 9, 64, 64)
    for k, a in enumerate(actions):  # oldest first; the third action is clipped to [-1, 1]
        expected = np.rint((np.clip(a, -1, 1) + 1) * 127.5)
        np.testing.assert_array_equal(frames[k, 3:, 5, 7], expected)
        assert np.all(frames[k, 3:] == frames[k, 3:, :1, :1])  # constant planes
    np.testing.assert_array_equal(frames[:, :3].reshape(9, 64, 64), ref)


def test_frame_stack_helper_rejects_bad_use():
    with pytest.raises(EnvError, match="frame_stack=0"):
        FrameStack(0)
    with pytest.raises(EnvError, match="before reset"):
        FrameStack(2).push(np.zeros((3, 4, 4), np.uint8))


# ------------------------------------------------------------------------------ registered tasks
def _term_task_env(seed):
    from dm_control.rl import control
    from dm_control.suite import cartpole

    class TermBalance(cartpole.Balance):
        reward_terms = ("upright", "centered")
        has_success = True
        default_action_repeat = 3
        default_camera = "lookatcart"

        def __init__(self, random=None):
            super().__init__(swing_up=False, sparse=False, random=random)
            self.last_reward_terms, self.last_success, self.history = {}, False, []

        def get_reward(self, physics):
            upright = float((physics.pole_angle_cosine().mean() + 1.0) / 2.0)
            centered = float(abs(physics.cart_position()) < 0.05)
            self.last_reward_terms = {"upright": upright, "centered": centered}
            self.history.append(self.last_reward_terms)
            self.last_success = centered > 0.5
            return upright + centered

    physics = cartpole.Physics.from_xml_string(*cartpole.get_model_and_assets())
    return control.Environment(physics, TermBalance(random=seed), time_limit=10)


@pytest.fixture
def fake_tasks(monkeypatch):
    import ezrobot.tasks as tasks

    calls = []

    def load(name_or_path, seed, **kwargs):
        calls.append((name_or_path, seed, kwargs))
        return _term_task_env(seed)

    monkeypatch.setattr(tasks, "load", load, raising=False)
    return calls


def test_registered_task_terms_success_and_defaults(fake_tasks):
    cfg = EnvConfig(gym_kwargs={"difficulty": 2})
    env, spec = make_env("balance_terms", cfg, seed=3, train=True)
    assert fake_tasks == [("balance_terms", 3, {"difficulty": 2})]
    assert spec.reward_terms == ("upright", "centered") and spec.has_success
    assert spec.action_repeat == 3 and spec.max_episode_steps == 333
    obs, info = env.reset()
    assert obs.shape == spec.obs_shape and info["success"] is False  # nothing achieved before the first step
    task = env.unwrapped.task
    rng = np.random.default_rng(0)
    for _ in range(5):
        seen = len(task.history)
        _, reward, _, _, info = env.step(_random_action(spec, rng))
        sim_steps = task.history[seen:]  # one agent step = action_repeat simulator steps
        assert info["env_steps"] == len(sim_steps) == 3
        for term in ("upright", "centered"):  # per agent step: the sum of the per-simulator-step values
            assert all(0.0 <= step[term] <= 1.0 for step in sim_steps)
            assert info[f"reward/{term}"] == pytest.approx(sum(step[term] for step in sim_steps))
        assert info["reward/upright"] + info["reward/centered"] == pytest.approx(reward)
        assert info["success"] is (sim_steps[-1]["centered"] > 0.5)  # success of the last simulator step
        assert info["success"] == env.unwrapped.task.last_success


def test_registered_task_pixels_use_task_camera_and_py_paths(fake_tasks):
    env, spec = make_env("some/dir/my_task.py", EnvConfig(obs_type="pixels", image_size=64), seed=0,
                         train=False)
    assert fake_tasks[0][0] == "some/dir/my_task.py"
    assert env._opts.camera == "lookatcart" and spec.obs_shape == (9, 64, 64)
    assert env.reset()[0].shape == (9, 64, 64)


def test_registered_task_without_registry(monkeypatch):
    import ezrobot.tasks as tasks

    monkeypatch.delattr(tasks, "load", raising=False)
    with pytest.raises(EnvError, match="no load"):
        make_env("reach", EnvConfig(), seed=0, train=True)


# --------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("task,pattern", [
    ("gym/CartPol-v1", r"unknown gymnasium id 'gym/CartPol-v1'.*did you mean: CartPole-v1"),
    ("atari/Pongg", r"unknown Atari game 'atari/Pongg'.*did you mean: Pong.*ALE/<Game>-v5"),
    ("dmc/cheeta-run", r"unknown dm_control task 'dmc/cheeta-run'.*did you mean: cheetah-run"),
    ("dmc/cartpole", r"expected dmc/<domain>-<task>"),
    ("foo/bar", r"unknown prefix 'foo'"),
    ("", r"is empty"),
])
def test_unknown_ids_raise_env_error(task, pattern):
    with pytest.raises(EnvError, match=pattern):
        make_env(task, EnvConfig(), seed=0, train=True)


@pytest.mark.parametrize("task,cfg,pattern", [
    ("dmc/cartpole-swingup", EnvConfig(obs_type="pixels", image_size=100), r"image_size=100.*64, 84, 96"),
    ("dmc/cartpole-swingup", EnvConfig(obs_type="state"), r"obs_type='state'"),
    ("dmc/cartpole-swingup", EnvConfig(render_preset="turbo"), r"render_preset='turbo'"),
    ("dmc/cartpole-swingup", EnvConfig(obs_type="pixels", camera="top"), r"camera 'top' does not exist"),
    ("atari/Pong", EnvConfig(obs_type="proprio"), r"obs_type='proprio'"),
    ("atari/Pong", EnvConfig(sticky_action_prob=1.5), r"sticky_action_prob=1.5"),
    ("dmc/cartpole-swingup", EnvConfig(obs_type="proprio", action_planes=True), r"action_planes=true needs pixel"),
    ("atari/Pong", EnvConfig(action_planes=True), r"action_planes=true is not supported for 'atari/Pong'"),
])
def test_bad_options_raise_env_error(task, cfg, pattern):
    with pytest.raises(EnvError, match=pattern):
        make_env(task, cfg, seed=0, train=True)


def test_rendering_backend_choice_errors():
    with pytest.raises(EnvError, match=r"'vulkan'.*egl, osmesa"):
        rendering.select_backend("vulkan")
    assert "dm_control._render" in sys.modules  # imported above with conftest's MUJOCO_GL
    active = rendering.select_backend("")
    assert active == sys.modules["dm_control._render"].BACKEND
    other = "osmesa" if active != "osmesa" else "egl"
    with pytest.raises(EnvError, match="before the first dm_control import"):
        rendering.select_backend(other)


def test_rendering_probe_reports_missing_backend(monkeypatch):
    monkeypatch.setattr(rendering, "_probe_cache", {})
    monkeypatch.setattr(rendering, "_active_backend", lambda: None)
    monkeypatch.setattr(rendering, "probe_backend", lambda name: (False, f"{name} missing"))
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    with pytest.raises(EnvError, match=r"egl: egl missing; osmesa: osmesa missing.*libosmesa6"):
        rendering.select_backend("")
    assert rendering.select_backend("", strict=False) is None


@pytest.mark.slow
def test_fast_preset_renders_faster():
    rates = {}
    for preset in ("default", "fast"):
        env, spec = make_env("dmc/cheetah-run", EnvConfig(obs_type="pixels", image_size=84,
                                                         render_preset=preset), seed=0, train=True)
        env.reset()
        start = time.perf_counter()
        for _ in range(100):
            env._frame()
        rates[preset] = 100 / (time.perf_counter() - start)
    print(f"render fps at 84x84: {rates}")
    assert rates["fast"] > rates["default"]
