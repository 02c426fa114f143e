"""Rollout videos: overlays, recording on dm_control / registered tasks, mp4 and gif round trips."""
from __future__ import annotations

import os
import stat

import imageio
import imageio.v3 as iio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ezrobot.envs.spec import EnvConfig, EnvSpec
from ezrobot.overlay import (CHOSEN_BAR_COLOR, NEGATIVE_BAR_COLOR, TERM_BAR_COLOR, RolloutFrameInfo,
                             draw_overlay, panel_width)
from ezrobot.rollout_video import (EpisodeRecorder, discounted_returns, parse_cameras, random_policy,
                                   record_episode, record_rollouts)
from ezrobot.video_writer import write_video


# ----------------------------------------------------------------------------------------------- helpers
def _frames(n: int, h: int, w: int) -> list:
    """Smooth, distinct frames (a moving gradient) that survive lossy coding."""
    yy, xx = np.mgrid[0:h, 0:w]
    return [np.stack([(xx * 4 + 20 * i) % 256, (yy * 4) % 256, np.full_like(xx, 40 * i % 256)], -1)
            .astype(np.uint8) for i in range(n)]


def _mp4_frames(path) -> list:
    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        return [np.asarray(f) for f in reader]


def _count_color(img: np.ndarray, color) -> int:
    return int(np.all(img == np.array(color, np.uint8), axis=-1).sum())


@pytest.fixture(scope="module")
def cartpole():
    from ezrobot.envs import make_env

    env, _ = make_env("dmc/cartpole-swingup", EnvConfig(), seed=0, train=False)
    yield env
    env.close()


class _SearchLikePolicy:
    """Random actions plus search-like extras: value = steps since reset, K = 4 sampled actions."""

    def __init__(self, spec, seed: int):
        self.rng, self.spec, self.t = np.random.default_rng(seed), spec, 0

    def __call__(self, obs):
        k, d = 4, self.spec.num_actions
        sampled = self.rng.uniform(-1, 1, (k, d)).astype(np.float32)
        probs = self.rng.dirichlet(np.ones(k))
        extras = {"value": float(self.t), "visit_probs": probs, "sampled_actions": sampled}
        self.t += 1
        return sampled[int(np.argmax(probs))], extras


# --------------------------------------------------------------------------------------------- pure math
@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-10, 10), max_size=30), st.floats(0, 1))
def test_discounted_returns_matches_direct_sum(rewards, discount):
    got = discounted_returns(rewards, discount)
    want = [sum(discount ** k * r for k, r in enumerate(rewards[t:])) for t in range(len(rewards) + 1)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_discounted_returns_rejects_bad_discount():
    with pytest.raises(ValueError, match="1.5"):
        discounted_returns([1.0], 1.5)


def test_parse_cameras():
    assert parse_cameras("") == [None]
    assert parse_cameras("0, side,2") == [0, "side", 2]
    with pytest.raises(ValueError, match="empty entry"):
        parse_cameras("0,,1")


def test_random_policy_respects_spec():
    base = dict(name="x", obs_shape=(3,), obs_dtype="float32", frame_stack=1, discount=0.99,
                action_repeat=1, max_episode_steps=10)
    rng = np.random.default_rng(0)
    cont = random_policy(EnvSpec(action_type="continuous", num_actions=3, **base), rng)
    acts = np.stack([cont(None)[0] for _ in range(200)])
    assert acts.shape == (200, 3) and acts.dtype == np.float32 and acts.min() >= -1 and acts.max() <= 1
    disc = random_policy(EnvSpec(action_type="discrete", num_actions=5, **base), rng)
    assert sorted({disc(None)[0] for _ in range(200)}) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="'multi'"):
        random_policy(EnvSpec(action_type="multi", num_actions=2, **base), rng)


# ---------------------------------------------------------------------------------------------- overlays
def test_term_bars_scale_with_value_and_sign():
    img = np.zeros((240, 100, 3), np.uint8)

    def bar_pixels(value, color):
        out = draw_overlay(img, RolloutFrameInfo(step=1, reward_terms={"t": value}), {"t": 2.0})
        assert out.shape == (240, 100 + panel_width(240), 3)
        assert np.array_equal(out[:, :100], img)
        return _count_color(out[:, 100:], color)

    full, half = bar_pixels(2.0, TERM_BAR_COLOR), bar_pixels(1.0, TERM_BAR_COLOR)
    assert full > 0 and abs(half / full - 0.5) < 0.05
    assert bar_pixels(0.0, TERM_BAR_COLOR) == 0
    assert bar_pixels(-1.0, NEGATIVE_BAR_COLOR) == half and bar_pixels(-1.0, TERM_BAR_COLOR) == 0
    assert bar_pixels(5.0, TERM_BAR_COLOR) == full  # clipped to [0, 1] of the per-step max


def test_visit_chart_highlights_taken_action():
    img = np.zeros((240, 64, 3), np.uint8)
    info = RolloutFrameInfo(step=0, visit_probs=np.array([0.2, 0.5, 0.3]), action=2)
    chosen_a2 = _count_color(draw_overlay(img, info), CHOSEN_BAR_COLOR)
    info.action = 1
    chosen_a1 = _count_color(draw_overlay(img, info), CHOSEN_BAR_COLOR)
    assert 0 < chosen_a2 < chosen_a1  # bar height follows the probability of the highlighted action
    with pytest.raises(ValueError, match=r"\(10, 10\)"):
        draw_overlay(np.zeros((10, 10), np.uint8), info)


def test_recorder_second_pass_fills_return_to_go_and_term_scales():
    rec = EpisodeRecorder(0.5)
    frame = np.zeros((40, 30, 3), np.uint8)
    with pytest.raises(RuntimeError, match="start"):
        rec.step(frame, 1.0, {})
    rec.start(frame)
    rec.step(frame, 1.0, {"reward/a": 3.0}, action=0, extras={"value": 7.0, "visit_counts": [1, 3]})
    rec.step(frame, 2.0, {"reward/a": 1.0, "other": 5}, action=1, extras={})
    with pytest.raises(ValueError, match="differs"):
        rec.step(np.zeros((41, 30, 3), np.uint8), 0.0, {})
    frames = rec.finish()
    assert len(frames) == 3 and frames[0].shape == (40, 30 + panel_width(40), 3)
    assert [i.return_to_go for i in rec.infos] == [2.0, 2.0, 0.0]
    assert [i.episode_return for i in rec.infos] == [0.0, 1.0, 3.0]
    assert rec.infos[0].value == 7.0 and rec.infos[1].value is None
    np.testing.assert_allclose(rec.infos[0].visit_probs, [0.25, 0.75])
    assert rec.infos[2].reward_terms == {"a": 1.0}
    assert not np.array_equal(frames[1], frames[2])  # the panel text changes with the step
    with pytest.raises(ValueError, match="sampled_actions"):
        rec.step(frame, 0.0, {}, extras={"visit_probs": [0.5, 0.5], "sampled_actions": np.zeros((3, 1))})


def test_term_bars_are_full_at_the_action_repeat():
    """A term sums [0, 1] values over the simulator steps of one agent step: a full bar is ``term_max``."""
    frame = np.zeros((64, 30, 3), np.uint8)
    drawn = {}
    for term_max in (1.0, 2.0):
        rec = EpisodeRecorder(0.9, term_max=term_max)
        rec.start(frame)
        rec.step(frame, 1.0, {"reward/a": 1.0, "reward/b": 0.5})
        drawn[term_max] = rec.finish()[1]
        assert rec.bar_scales() == {"a": term_max, "b": term_max}
    assert not np.array_equal(drawn[1.0], drawn[2.0])  # the bars of repeat 2 are half as long
    rec = EpisodeRecorder(0.9, term_max=2.0, term_scales={"b": 4.0})
    rec.start(frame)
    rec.step(frame, 1.0, {"reward/a": 3.0, "reward/b": 0.5})
    assert rec.bar_scales() == {"a": 3.0, "b": 4.0}


# --------------------------------------------------------------------------------------- dm_control rollouts
def test_record_rollouts_on_dmc_cartpole(cartpole):
    spec, size = cartpole.spec, (64, 80)
    plain = [e.frames for e in record_rollouts(cartpole, random_policy(spec, np.random.default_rng(1)), episodes=2,
                                               cameras=[0, 1], size=size, overlays=False, seed=3, max_steps=4)]
    shown = [e.frames for e in record_rollouts(cartpole, random_policy(spec, np.random.default_rng(1)), episodes=2,
                                               cameras=[0, 1], size=size, overlays=True, seed=3, max_steps=4)]
    assert [len(e) for e in plain] == [5, 5] and [len(e) for e in shown] == [5, 5]
    assert plain[0][0].shape == (64, 160, 3) and plain[0][0].dtype == np.uint8
    assert shown[0][0].shape == (64, 160 + panel_width(64), 3)
    for raw, annotated in zip(plain[0] + plain[1], shown[0] + shown[1]):
        assert np.array_equal(annotated[:, :160], raw)  # same seed, same pixels; panel is appended
    assert not np.array_equal(plain[0][0][:, :80], plain[0][0][:, 80:])  # two different cameras
    assert not np.array_equal(plain[0][-1], plain[1][-1])  # episodes reset with different seeds


def test_record_episode_attaches_extras_to_the_decision_frame(cartpole, tmp_path):
    rec = record_episode(cartpole, _SearchLikePolicy(cartpole.spec, 0), [None], size=(96, 96), seed=0,
                         max_steps=6, discount=0.9)
    assert rec.length == 6 and len(rec.frames) == len(rec.infos) == 7
    assert [i.value for i in rec.infos] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, None]
    rewards = [i.reward for i in rec.infos[1:]]
    np.testing.assert_allclose([i.return_to_go for i in rec.infos], discounted_returns(rewards, 0.9))
    assert rec.episode_return == pytest.approx(sum(rewards))
    for info in rec.infos[:-1]:
        assert info.sampled_actions.shape == (4, cartpole.spec.num_actions)
        assert np.allclose(info.action, info.sampled_actions[np.argmax(info.visit_probs)])
    assert set(cartpole.spec.reward_terms) <= set(rec.infos[1].reward_terms)
    out = write_video(rec.frames, tmp_path / "cartpole.mp4", fps=20)
    decoded = _mp4_frames(out)
    assert len(decoded) == 7 and decoded[0].shape == rec.frames[0].shape


# ------------------------------------------------------------------------------------------------ writing
def test_write_mp4_round_trip(tmp_path):
    frames = _frames(7, 48, 64)
    out = write_video(frames, tmp_path / "nested" / "dir" / "a.mp4", fps=12, format="mp4")
    decoded = _mp4_frames(out)
    assert len(decoded) == 7 and decoded[0].shape == (48, 64, 3)
    assert np.abs(decoded[3].astype(int) - frames[3]).mean() < 12
    assert os.listdir(out.parent) == ["a.mp4"]  # no temporary file left behind


@pytest.mark.parametrize("block, want", [(2, (34, 48)), (16, (48, 48))])
def test_write_mp4_pads_to_macro_block(tmp_path, block, want):
    frames = _frames(3, 33, 47)
    decoded = _mp4_frames(write_video(frames, tmp_path / "odd.mp4", macro_block_size=block))
    assert len(decoded) == 3 and decoded[0].shape == want + (3,)
    assert np.abs(decoded[1][:33, :47].astype(int) - frames[1]).mean() < 12


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_video_files_get_the_usual_mode(tmp_path, umask):
    """Not mkstemp's 0600: 0666 minus the umask, as a file made by ``open`` would have."""
    old = os.umask(umask)
    try:
        out = write_video(_frames(2, 16, 16), tmp_path / "m.gif", fps=10)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask


def test_write_gif_round_trip(tmp_path):
    frames = _frames(5, 30, 41) + [np.zeros((30, 41), np.uint8)]  # a grey frame is expanded to RGB
    out = write_video(frames, tmp_path / "b.gif", fps=10)
    decoded = iio.imread(out, index=None)
    assert decoded.shape[:3] == (6, 30, 41)
    assert np.abs(decoded[2][..., :3].astype(int) - frames[2]).mean() < 12


def test_write_video_rejects_bad_input_and_keeps_old_file(tmp_path):
    target = tmp_path / "c.mp4"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match=r"'avi'.*mp4, gif"):
        write_video(_frames(2, 16, 16), tmp_path / "c.avi")
    with pytest.raises(ValueError, match=r"'webm'.*mp4, gif"):
        write_video(_frames(2, 16, 16), target, format="webm")
    with pytest.raises(ValueError, match="fps 60"):
        write_video(_frames(2, 16, 16), tmp_path / "c.gif", fps=60)
    with pytest.raises(ValueError, match="frame 1 has shape"):
        write_video(_frames(1, 16, 16) + _frames(1, 16, 18), target)
    with pytest.raises(ValueError, match="at least one frame"):
        write_video([], target)
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["c.mp4"]


# ------------------------------------------------------------------------------------- registered tasks
def _registered_tasks() -> list:
    """Registry names without building the tasks (``list_tasks()`` builds each one to describe it)."""
    try:
        import ezrobot.tasks as registry
    except ImportError:
        return []
    names = getattr(registry, "BUILTIN_TASKS", None)
    if names is not None:
        return sorted(names)
    return [getattr(t, "name", t) for t in registry.list_tasks()]


_TASKS = _registered_tasks()


@pytest.mark.parametrize("task", _TASKS or [pytest.param(None, marks=pytest.mark.skip(
    reason="ezrobot.tasks is not importable or its registry is empty"))])
def test_registered_task_renders_overlayed_rollout(task):
    from ezrobot.envs import make_env
    from ezrobot.tasks import task_class

    try:
        task_class(task)
    except ModuleNotFoundError as exc:  # registered while its module is still being written
        pytest.skip(f"task {task!r} is registered but its module is missing: {exc}")
    env, spec = make_env(task, EnvConfig(), seed=0, train=False)
    try:
        rec = record_episode(env, random_policy(spec, np.random.default_rng(0)), [None], size=(64, 64),
                             seed=0, max_steps=3)
    finally:
        env.close()
    assert len(rec.frames) == rec.length + 1 and rec.length >= 1
    assert all(f.shape == (64, 64 + panel_width(64), 3) and f.dtype == np.uint8 for f in rec.frames)
    assert set(spec.reward_terms) <= set(rec.infos[1].reward_terms)
    assert spec.action_repeat > 1 and set(rec.bar_scales) == set(spec.reward_terms)
    assert all(scale == spec.action_repeat for scale in rec.bar_scales.values())  # a full bar = the repeat


# ------------------------------------------------------------------------------------- evaluation videos
def test_eval_video_and_trained_policy_video(tmp_path):
    """``eval.video=true``: the trainer's evaluator is given an ``EvalVideoRecorder``, which writes
    ``videos/eval_<env steps>.mp4`` of the first evaluation episode; without it no video is written."""
    from ezrobot.commands.train import main as train_command

    tiny = ["experiment=dmc_proprio", "task=dmc/cartpole-swingup", "train.start_transitions=60",
            "train.batch_size=16", "search.num_simulations=4", "eval.episodes=1", "eval.interval=200",
            "log.progress=false", "replay.capacity=2000", "train.replay_ratio=0.25", "env_steps=200",
            "env.max_episode_steps=30"]
    assert train_command([*tiny, "eval.video=true", f"run_dir={tmp_path / 'a'}"]) == 0
    videos = sorted(os.listdir(tmp_path / "a" / "videos"))
    assert videos == ["eval_000000200.mp4"]
    frames = _mp4_frames(tmp_path / "a" / "videos" / videos[0])
    assert len(frames) == 31  # 30 agent steps and the reset frame
    assert train_command([*tiny, f"run_dir={tmp_path / 'b'}"]) == 0
    assert not (tmp_path / "b" / "videos").exists()

    # ``ezrobot video run_dir=R``: the trained policy's search (SearchPolicy) drives the episodes.
    from ezrobot.commands.video import main as video_command

    out = tmp_path / "trained.mp4"
    assert video_command([f"run_dir={tmp_path / 'a'}", "episodes=2", "max_steps=4", "size=32x32",
                          f"out={out}"]) == 0
    assert len(_mp4_frames(out)) == 10  # two episodes of 4 steps plus their reset frames
