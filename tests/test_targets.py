"""Hand-computed checks of the pure target math in ``ezrobot.targets``."""
import numpy as np
import pytest

from ezrobot.replay.trajectory import Trajectory
from ezrobot.targets import (TargetSettings, build_targets, dynamic_td_steps, mixed_value_targets, nstep_bootstrap,
                             nstep_value_targets, value_prefix_targets, visit_policy_targets)


def test_value_prefix_resets_every_horizon_from_the_root():
    rewards = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]])
    np.testing.assert_allclose(value_prefix_targets(rewards, 3), [[1, 3, 6, 4, 9, 15, 7]])
    np.testing.assert_allclose(value_prefix_targets(rewards, 5), [[1, 3, 6, 10, 15, 6, 13]])
    np.testing.assert_allclose(value_prefix_targets(rewards, 1), rewards)
    # Past the episode end rewards are 0, so the prefix stays flat until the next reset.
    np.testing.assert_allclose(value_prefix_targets(np.array([[1.0, 1.0, 0.0, 0.0, 0.0]]), 2), [[1, 2, 0, 0, 0]])


def test_value_prefix_rejects_bad_horizon():
    with pytest.raises(ValueError, match="horizon=0"):
        value_prefix_targets(np.zeros((1, 5)), 0)


def test_dynamic_td_steps_matches_the_paper_formula():
    ages = np.array([0, 299, 300, 599, 600, 1199, 1200, 5000])
    got = dynamic_td_steps(ages, td_steps=5, total_transitions=1000)
    np.testing.assert_array_equal(got, [5, 5, 4, 4, 3, 2, 1, 1])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(dynamic_td_steps(np.array([0, 10**9]), 3, 10), [3, 1])
    with pytest.raises(ValueError, match="ages must be >= 0"):
        dynamic_td_steps(np.array([-1]), 5, 1000)
    with pytest.raises(ValueError, match="total_transitions=0"):
        dynamic_td_steps(np.array([1]), 5, 0)


def test_nstep_bootstrap_terminated_truncated_and_past_the_end():
    g = 0.5
    # Row 0: episode terminates at window index 3 (rewards 1, 2, 4 at indices 0..2).
    # Row 1: same rewards, episode truncated at index 3.
    # Row 2: live episode, window long enough (last = J = 5).
    rewards = np.array([[1, 2, 4, 0, 0], [1, 2, 4, 0, 0], [1, 2, 4, 8, 16]], dtype=np.float32)
    last = np.array([3, 3, 5])
    horizons = np.array([2, 2, 2])
    ret, idx, disc = nstep_bootstrap(rewards, last, horizons, g, num_targets=4,
                                     last_terminated=np.array([True, False, False]))
    np.testing.assert_allclose(ret[0], [1 + g * 2, 2 + g * 4, 4, 0])
    np.testing.assert_array_equal(idx[0], [2, 3, 3, 3])
    np.testing.assert_allclose(disc[0], [g ** 2, 0, 0, 0])
    np.testing.assert_allclose(ret[1], [1 + g * 2, 2 + g * 4, 4, 0])
    np.testing.assert_allclose(disc[1], [g ** 2, g ** 2, g, 1.0])  # bootstrap from the final obs
    np.testing.assert_array_equal(idx[1], [2, 3, 3, 3])
    np.testing.assert_allclose(ret[2], [1 + g * 2, 2 + g * 4, 4 + g * 8, 8 + g * 16])
    np.testing.assert_allclose(disc[2], [g ** 2] * 4)
    np.testing.assert_array_equal(idx[2], [2, 3, 4, 5])


def test_nstep_bootstrap_past_the_end_and_per_sample_horizons():
    rewards = np.array([[3, 0, 0, 0], [1, 1, 1, 1]], dtype=np.float32)
    ret, idx, disc = nstep_bootstrap(rewards, np.array([1, 4]), np.array([3, 1]), 0.9, 3,
                                     np.array([True, False]))
    np.testing.assert_allclose(ret, [[3, 0, 0], [1, 1, 1]])
    np.testing.assert_allclose(disc, [[0, 0, 0], [0.9, 0.9, 0.9]])  # row 0: k=1 final, k=2 past the end
    np.testing.assert_array_equal(idx, [[1, 1, 1], [1, 2, 3]])


def test_nstep_value_targets_and_mask():
    z = nstep_value_targets(np.array([[1.0, 2.0, 0.0]]), np.array([[0.25, 0.0, 0.0]]),
                            np.array([[4.0, 9.0, 9.0]]), np.array([[True, True, False]]))
    np.testing.assert_allclose(z, [[2.0, 2.0, 0.0]])
    with pytest.raises(ValueError, match="bootstrap_values"):
        nstep_value_targets(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 2)), np.ones((1, 3), bool))


def test_mixed_value_targets_switch_by_step_and_age():
    td = np.array([[1.0, 2.0, 0.5], [1.0, 2.0, 0.5]], np.float32)
    sve = np.array([[7.0, 8.0, 9.0], [7.0, 8.0, 9.0]], np.float32)
    pmask = np.array([[True, True, False], [True, True, False]])  # index 2 is a final position
    ages = np.array([10, 100])
    early = mixed_value_targets(td, sve, pmask, ages, train_step=5, td_only_steps=10, td_newest=50)
    np.testing.assert_allclose(early, td)
    late = mixed_value_targets(td, sve, pmask, ages, train_step=10, td_only_steps=10, td_newest=50)
    np.testing.assert_allclose(late, [[1.0, 2.0, 0.5], [7.0, 8.0, 0.5]])
    with pytest.raises(ValueError, match="ages"):
        mixed_value_targets(td, sve, pmask, np.array([1]), 10, 10, 50)


def test_visit_policy_targets_normalise_and_mask():
    counts = np.array([[[1, 3, 0], [0, 0, 0], [2, 2, 4]]], np.float32)
    mask = np.array([[True, True, False]])
    got = visit_policy_targets(counts, mask)
    np.testing.assert_allclose(got, [[[0.25, 0.75, 0], [0, 0, 0], [0, 0, 0]]])
    with pytest.raises(ValueError, match=">= 0"):
        visit_policy_targets(-counts, mask)


def _trajectory(terminated: bool) -> Trajectory:
    """t = step 1 of an episode with rewards 1, 2, 4 whose final observation (step 3) sits at ring position 3;
    K = 2 unroll steps, n = 2: the window t..t+4 stops at its index 2 (step 3)."""
    return Trajectory(
        obs=np.zeros((1, 3, 1), np.float32), actions=np.zeros((1, 2), np.int64),
        rewards=np.array([[2.0, 4.0, 0.0, 0.0]], np.float32), obs_mask=np.array([[True, True, True]]),
        policy_mask=np.array([[True, True, False]]), action_mask=np.array([[True, True]]),
        policies=np.zeros((1, 3, 2), np.float32), sampled_actions=None, root_values=np.zeros((1, 3), np.float32),
        ages=np.array([30]), positions=np.array([[1, 2, 3]]), window_positions=np.array([[1, 2, 3, 3, 3]]),
        last=np.array([2]), terminated=np.array([terminated]))


def _settings(**overrides) -> TargetSettings:
    base = dict(discount=0.5, td_steps=2, dynamic_td=False, td_horizon_T=100, mixed=False, mixed_value_t1=10,
                mixed_value_t2=20, use_value_prefix=True, value_prefix_horizon=5)
    return TargetSettings(**{**base, **overrides})


def test_build_targets_terminated_episode_needs_no_bootstrap():
    calls = []

    def values(positions, mask):
        calls.append((positions.copy(), mask.copy()))
        return np.where(mask, 10.0, 0.0).astype(np.float32)

    out = build_targets(_trajectory(True), _settings(), 0, values)
    np.testing.assert_allclose(out.value, [[2 + 0.5 * 4, 4, 0]])
    np.testing.assert_array_equal(calls[0][0], [[3, 3, 3]])
    assert not calls[0][1].any()  # every bootstrap lies at the termination
    np.testing.assert_allclose(out.value_prefix, [[2, 6]])
    assert out.value_mask.all() and out.reward_mask.all() and out.td_horizons.tolist() == [2]
    immediate = build_targets(_trajectory(True), _settings(use_value_prefix=False), 0, values)
    np.testing.assert_allclose(immediate.value_prefix, [[2, 4]])


def test_build_targets_truncated_episode_bootstraps_and_mixes_search_values():
    values = lambda positions, mask: np.where(mask, 10.0, 0.0).astype(np.float32)  # noqa: E731
    out = build_targets(_trajectory(False), _settings(), 0, values)
    np.testing.assert_allclose(out.value, [[4 + 0.25 * 10, 4 + 0.5 * 10, 10]])
    search = np.full((1, 3), 7.0, np.float32)
    mixed = build_targets(_trajectory(False), _settings(mixed=True), 10, values, search)
    np.testing.assert_allclose(mixed.value, [[7, 7, 10]])  # search values where a search ran, age 30 >= T2
    early = build_targets(_trajectory(False), _settings(mixed=True), 9, values, search)
    np.testing.assert_allclose(early.value, out.value)  # before T1 updates: plain TD targets
    dynamic = build_targets(_trajectory(False), _settings(dynamic_td=True, td_horizon_T=50), 0, values)
    assert dynamic.td_horizons.tolist() == [1]  # 2 - floor(30 / (0.3 * 50))
