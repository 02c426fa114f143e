"""Environment adapter contract for gymnasium ids (gym/...) and Atari games (atari/...)."""
import numpy as np
import pytest

from ezrobot.envs import EnvConfig, EnvError, EnvSpec, make_env


def _random_action(spec: EnvSpec, rng: np.random.Generator):
    if spec.action_type == "discrete":
        return int(rng.integers(spec.num_actions))
    return rng.uniform(-1.0, 1.0, spec.num_actions).astype(np.float32)


def _check_obs(obs, spec: EnvSpec):
    assert obs.shape == spec.obs_shape
    assert obs.dtype == np.dtype(spec.obs_dtype)
    if not spec.is_pixels:
        assert np.all(np.isfinite(obs))


# ------------------------------------------------------------------------------------------ gym
def test_gym_cartpole_episode():
    env, spec = make_env("gym/CartPole-v1", EnvConfig(), seed=0, train=True)
    assert (spec.obs_shape, spec.action_type, spec.num_actions, spec.max_episode_steps) == ((4,), "discrete",
                                                                                            2, 500)
    obs, _ = env.reset()
    _check_obs(obs, spec)
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(0)  # always left: falls quickly
        _check_obs(obs, spec)
        steps += 1
        done = terminated or truncated
    assert terminated and not truncated and steps < 50 and reward == 1.0
    np.testing.assert_array_equal(env.reset(seed=4)[0], env.reset(seed=4)[0])
    with pytest.raises(EnvError, match="out of range"):
        env.step(2)


def test_discount_override_and_its_bounds():
    assert make_env("gym/CartPole-v1", EnvConfig(), seed=0, train=True)[1].discount == 0.997
    env, spec = make_env("gym/CartPole-v1", EnvConfig(discount=0.9), seed=0, train=True)
    assert spec.discount == 0.9 and env.spec is spec
    for bad in (1.5, -0.1):
        with pytest.raises(EnvError, match=rf"env.discount={bad}.*\(0, 1\]"):
            make_env("gym/CartPole-v1", EnvConfig(discount=bad), seed=0, train=True)


def test_gym_image_env_frames_and_stack():
    cfg = EnvConfig(grayscale=True, frame_stack=2, image_size=64)
    env, spec = make_env("gym/ALE/Pong-v5", cfg, seed=0, train=True)
    assert spec.obs_shape == (2, 64, 64) and spec.obs_dtype == "uint8" and spec.frame_stack == 2
    obs, _ = env.reset()
    _check_obs(obs, spec)
    obs2, *_ = env.step(0)
    np.testing.assert_array_equal(obs2[:1], obs[1:])
    assert env.render().shape == (210, 160, 3)
    with pytest.raises(EnvError, match="proprio"):
        make_env("gym/ALE/Pong-v5", EnvConfig(obs_type="proprio"), seed=0, train=True)


def test_gym_continuous_actions_are_rescaled():
    env, spec = make_env("gym/Pendulum-v1", EnvConfig(action_repeat=2), seed=0, train=True)
    assert spec.action_type == "continuous" and spec.num_actions == 1 and spec.max_episode_steps == 100
    env.reset()
    _, _, _, _, info = env.step(np.array([1.0], np.float32))
    assert info["env_steps"] == 2
    assert env.unwrapped.unwrapped.last_u == pytest.approx(2.0)  # Pendulum torque bound is 2
    env.step(np.array([-0.5], np.float32))
    assert env.unwrapped.unwrapped.last_u == pytest.approx(-1.0)


# ---------------------------------------------------------------------------------------- Atari
def test_atari_pong_spec_and_stepping():
    env, spec = make_env("atari/Pong", EnvConfig(max_train_frames=400), seed=0, train=True)
    assert spec.obs_shape == (12, 96, 96) and spec.obs_dtype == "uint8" and spec.frame_stack == 4
    assert (spec.num_actions, spec.action_repeat, spec.discount) == (6, 4, 0.997)
    assert spec.max_episode_steps == 100
    obs, _ = env.reset()
    _check_obs(obs, spec)
    assert np.array_equal(obs[:3], obs[9:])  # padding "reset": the first frame repeated
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(steps % 6)
        _check_obs(obs, spec)
        assert info["env_steps"] == 4 and reward in (-1.0, 0.0, 1.0)
        steps += 1
        done = terminated or truncated
    assert steps == 100 and truncated and not terminated
    _, eval_spec = make_env("atari/Pong", EnvConfig(max_train_frames=400), seed=0, train=False)
    assert eval_spec.max_episode_steps == 27_000
    gray, gray_spec = make_env("atari/Pong", EnvConfig(grayscale=True), seed=0, train=True)
    assert gray_spec.obs_shape == (4, 96, 96) and gray.reset()[0].shape == (4, 96, 96)


def _first_scoring_step(train: bool):
    env, _ = make_env("atari/MsPacman", EnvConfig(), seed=0, train=train)
    env.reset()
    for t in range(300):
        _, reward, _, _, info = env.step(t // 10 % 5)
        if info["raw_reward"] != 0:
            return reward, info["raw_reward"]
    raise AssertionError("MsPacman scored nothing in 300 steps")


def test_atari_train_clips_rewards_eval_keeps_raw():
    train_reward, train_raw = _first_scoring_step(train=True)
    eval_reward, eval_raw = _first_scoring_step(train=False)
    assert train_raw == eval_raw and train_raw >= 10
    assert train_reward == 1.0 and eval_reward == eval_raw


def test_atari_episodic_life_continues_the_game():
    env, _ = make_env("atari/MsPacman", EnvConfig(noop_max=0), seed=0, train=True)
    env.reset()
    ale = env.unwrapped.ale
    start_lives = ale.lives()
    terminated = False
    for _ in range(3000):
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            break
    assert terminated and 0 < ale.lives() < start_lives
    frame = ale.getEpisodeFrameNumber()
    env.reset()  # continues: same game, frame counter keeps going
    assert ale.lives() == start_lives - 1 and ale.getEpisodeFrameNumber() > frame


def test_atari_seeding_is_deterministic():
    env, _ = make_env("atari/Breakout", EnvConfig(), seed=0, train=True)
    obs_a = [env.reset(seed=11)[0]] + [env.step(1)[0] for _ in range(5)]
    obs_b = [env.reset(seed=11)[0]] + [env.step(1)[0] for _ in range(5)]
    for a, b in zip(obs_a, obs_b):
        np.testing.assert_array_equal(a, b)


def test_atari_game_names_are_case_insensitive():
    _, spec = make_env("atari/ms_pacman", EnvConfig(), seed=0, train=False)
    assert spec.name == "atari/MsPacman"


def test_gym_pixels_from_render_of_a_vector_env():
    cfg = EnvConfig(obs_type="pixels", image_size=64, gym_kwargs={"width": 96, "height": 96})
    env, spec = make_env("gym/InvertedPendulum-v5", cfg, seed=0, train=True)
    assert spec.obs_shape == (12, 64, 64) and spec.action_type == "continuous"
    obs, _ = env.reset()
    _check_obs(obs, spec)
    rng = np.random.default_rng(0)
    for _ in range(2):
        new, _, _, _, info = env.step(_random_action(spec, rng))
        _check_obs(new, spec)
        np.testing.assert_array_equal(new[:9], obs[3:])
        obs = new
    assert obs.max() > obs.min()  # a real picture, not a blank frame
    env.close()
