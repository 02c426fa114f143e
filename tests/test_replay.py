"""Replay buffer tests: scripted episodes are written through the public API, and everything ``gather``
returns is compared with a plain-Python reference built from what the environments returned."""
import io
import time
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import FrameStackObservation

from ezrobot.envs.spec import EnvSpec
from ezrobot.replay.buffer import Replay
from ezrobot.replay.config import ReplayConfig
from ezrobot.sumtree import SumTree
from ezrobot.targets import dynamic_td_steps, nstep_window

GAMMA = 0.9


def gather(replay, positions, horizons, discount, rng):
    """``replay.gather`` plus the n-step pieces of the value targets along its windows (``targets.nstep_window``)
    and the stacked bootstrap observations, as the reanalyzer combines them."""
    traj = replay.gather(positions, rng)
    ret, boot_pos, boot_disc = nstep_window(traj, horizons, discount)
    return SimpleNamespace(**vars(traj), nstep_return=ret, bootstrap_discount=boot_disc,
                           bootstrap_obs=replay.stacked_obs(boot_pos), bootstrap_positions=boot_pos)


class ScriptedEnv(gym.Env):
    """Episodes of scripted lengths and endings; observations encode (episode serial, step).

    Vector obs: ``[serial, step, noise]`` float32. Pixel frames ``[2, 3, 3]`` uint8 with pixel (0, 0, 0) =
    serial, (0, 0, 1) = step and noise elsewhere.
    """

    def __init__(self, plan, serials, pixels, seed):
        self.plan, self.serials, self.pixels = list(plan), serials, pixels
        self.noise = np.random.default_rng(seed)
        shape, dtype = ((2, 3, 3), np.uint8) if pixels else ((3,), np.float32)
        self.observation_space = gym.spaces.Box(0, 255, shape, dtype)
        self.action_space = gym.spaces.Discrete(3)

    def _obs(self):
        if self.pixels:
            frame = self.noise.integers(0, 256, (2, 3, 3), dtype=np.uint8)
            frame[0, 0, 0], frame[0, 0, 1] = self.serial, self.t
            return frame
        return np.array([self.serial, self.t, self.noise.random()], np.float32)

    def reset(self, seed=None, options=None):
        self.length, self.ending = self.plan.pop(0) if self.plan else (10**6, "terminated")
        self.serial, self.t = self.serials[0], 0
        self.serials[0] += 1
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        reward = float(self.noise.normal())
        return self._obs(), reward, done and self.ending == "terminated", done and self.ending == "truncated", {}


class Driver:
    """Steps E scripted envs, writes into the replay and records every episode in plain Python."""

    def __init__(self, replay, plans, pixels=False, seed=0):
        self.replay, self.rng, serials = replay, np.random.default_rng(seed), [0]
        self.envs = [ScriptedEnv(plan, serials, pixels, seed + i) for i, plan in enumerate(plans)]
        if pixels:
            self.envs = [FrameStackObservation(env, replay.spec.frame_stack) for env in self.envs]
        self.records, self.insertions = {}, 0
        self.current = [None] * len(self.envs)
        self._start(np.arange(len(self.envs)))

    def _flat(self, obs):
        return np.asarray(obs).reshape(self.replay.spec.obs_shape)

    def _start(self, ids):
        obs = np.stack([self._flat(self.envs[i].reset()[0]) for i in ids])
        self.replay.start_episodes(ids, obs)
        for i, o in zip(ids, obs):
            self.current[i] = rec = dict(obs=[o], actions=[], rewards=[], policies=[], roots=[], sampled=[],
                                         ins=[self.insertions], end=None)
            self.records[serial_of(self.replay, o)] = rec
            self.insertions += 1

    def step(self, ids=None):
        ids = np.arange(len(self.envs)) if ids is None else np.asarray(ids)
        e, spec, p = len(ids), self.replay.spec, self.replay.policy_size
        if spec.action_type == "discrete":
            actions = self.rng.integers(0, spec.num_actions, e)
            sampled = None
        else:
            sampled = self.rng.uniform(-1, 1, (e, p, spec.num_actions)).astype(np.float32)
            actions = sampled[:, 0]
        policies = self.rng.dirichlet(np.ones(p), e).astype(np.float32)
        roots = self.rng.normal(size=e).astype(np.float32)
        out = [self.envs[i].step(int(self.rng.integers(3))) for i in ids]
        next_obs = np.stack([self._flat(o[0]) for o in out])
        rewards = np.array([o[1] for o in out], np.float32)
        term, trunc = np.array([o[2] for o in out]), np.array([o[3] for o in out])
        self.replay.add(ids, actions, rewards, policies, roots, next_obs, term, trunc, sampled_actions=sampled)
        for j, i in enumerate(ids):
            rec = self.current[i]
            rec["actions"].append(actions[j]), rec["rewards"].append(rewards[j])
            rec["policies"].append(policies[j]), rec["roots"].append(roots[j])
            rec["sampled"].append(None if sampled is None else sampled[j])
            rec["obs"].append(next_obs[j]), rec["ins"].append(self.insertions)
            self.insertions += 1
            if term[j] or trunc[j]:
                rec["end"] = "terminated" if term[j] else "truncated"
        done = ids[term | trunc]
        if done.size:
            self._start(done)


def serial_of(replay, obs):
    """(episode serial, step) encoded in one stacked observation (its newest frame)."""
    if replay.spec.is_pixels:
        frame = obs[-replay.frame_shape[0]:]
        return int(frame[0, 0, 0])
    return int(obs[0])


def step_of(replay, obs):
    return int(obs[-replay.frame_shape[0]:][0, 0, 1]) if replay.spec.is_pixels else int(obs[1])


def check_sample(replay, driver, positions, horizons, sample):
    """Compare every field of ``sample`` with the episode records (plain loops, test-only)."""
    K = replay.unroll_steps
    for b in range(len(positions)):
        rec = driver.records[serial_of(replay, sample.obs[b, 0])]
        t, l, end = step_of(replay, sample.obs[b, 0]), int(horizons[b]), rec["end"]
        n_act = len(rec["actions"])  # final obs index when the episode ended
        assert sample.ages[b] == replay.num_insertions - rec["ins"][t]
        for k in range(K + 1):
            s = t + k
            exists = s <= n_act if end else s < len(rec["obs"])
            assert sample.obs_mask[b, k] == exists and sample.policy_mask[b, k] == (s < n_act)
            np.testing.assert_array_equal(sample.obs[b, k], rec["obs"][min(s, len(rec["obs"]) - 1)])
            if s < n_act:
                np.testing.assert_allclose(sample.policies[b, k], rec["policies"][s])
                assert sample.root_values[b, k] == pytest.approx(rec["roots"][s])
                if rec["sampled"][s] is not None:
                    np.testing.assert_allclose(sample.sampled_actions[b, k], rec["sampled"][s])
            else:
                assert not sample.policies[b, k].any() and sample.root_values[b, k] == 0
            if k < K:
                assert sample.action_mask[b, k] == (s < n_act)
                assert sample.rewards[b, k] == pytest.approx(rec["rewards"][s] if s < n_act else 0.0)
                if s < n_act:
                    np.testing.assert_allclose(sample.actions[b, k], rec["actions"][s])
            if end and s > n_act:
                assert sample.nstep_return[b, k] == 0 and sample.bootstrap_discount[b, k] == 0
                continue
            m = min(l, n_act - s) if end else l
            assert s + m < len(rec["obs"]), "a sampleable position must have its bootstrap stored"
            expect = sum(GAMMA ** i * rec["rewards"][s + i] for i in range(m))
            assert sample.nstep_return[b, k] == pytest.approx(expect, abs=1e-5)
            np.testing.assert_array_equal(sample.bootstrap_obs[b, k], rec["obs"][s + m])
            terminal = end == "terminated" and s + m == n_act
            assert sample.bootstrap_discount[b, k] == pytest.approx(0.0 if terminal else GAMMA ** m)


def vec_spec(action_type="discrete", num_actions=3):
    return EnvSpec("test/vec", (3,), "float32", 1, action_type, num_actions, GAMMA, 1, 1000)


def pix_spec(stack=3):
    return EnvSpec("test/pix", (2 * stack, 3, 3), "uint8", stack, "discrete", 3, GAMMA, 1, 1000)


def make(spec, capacity=1000, num_envs=3, unroll=3, td=3, policy_size=None, **cfg):
    p = policy_size or (spec.num_actions if spec.action_type == "discrete" else 4)
    return Replay(ReplayConfig(capacity=capacity, **cfg), spec, num_envs=num_envs, unroll_steps=unroll,
                  td_steps=td, policy_size=p)


def sampleable_positions(replay):
    return np.flatnonzero(replay.state_dict()["sampleable"])


def gather_all(replay, driver, rng, total_transitions=40):
    pos = sampleable_positions(replay)
    ages = replay.num_insertions - replay.state_dict()["insertion"][pos]
    horizons = dynamic_td_steps(ages, replay.td_steps, total_transitions)
    assert replay.td_steps == 1 or len(set(horizons.tolist())) > 1, "the test should exercise several horizons"
    sample = gather(replay, pos, horizons, GAMMA, rng)
    check_sample(replay, driver, pos, horizons, sample)
    return pos, sample


# ------------------------------------------------------------------------------------------- tests
def test_hand_computed_episode_terminated():
    """One terminated episode with rewards written by hand: r = 1, 2, 4 then the final observation."""
    replay = make(vec_spec(), num_envs=1, unroll=2, td=2)
    replay.start_episodes([0], np.zeros((1, 3)))
    for t, (r, term) in enumerate([(1.0, False), (2.0, False), (4.0, True)]):
        replay.add([0], [t], [r], np.full((1, 3), 1 / 3), [0.0], np.full((1, 3), t + 1.0), [term], [False])
    assert replay.num_sampleable == 3 and len(replay) == 4 and replay.num_insertions == 4
    s = gather(replay, [1], [2], 0.5, np.random.default_rng(0))  # t = step 1
    np.testing.assert_allclose(s.nstep_return, [[2 + 0.5 * 4, 4, 0]])
    np.testing.assert_allclose(s.bootstrap_discount, [[0, 0, 0]])  # terminated within the horizon
    np.testing.assert_allclose(s.obs[0, :, 0], [1, 2, 3])
    np.testing.assert_allclose(s.bootstrap_obs[0, :, 0], [3, 3, 3])
    np.testing.assert_array_equal(s.obs_mask, [[True, True, True]])
    np.testing.assert_array_equal(s.policy_mask, [[True, True, False]])
    s = gather(replay, [0], [1], 0.5, np.random.default_rng(0))
    np.testing.assert_allclose(s.nstep_return, [[1, 2, 4]])
    np.testing.assert_allclose(s.bootstrap_discount, [[0.5, 0.5, 0]])
    np.testing.assert_array_equal(s.ages, [4])


def test_hand_computed_episode_truncated_bootstraps_from_final_obs():
    replay = make(vec_spec(), num_envs=1, unroll=2, td=2)
    replay.start_episodes([0], np.zeros((1, 3)))
    for t, (r, trunc) in enumerate([(1.0, False), (2.0, False), (4.0, True)]):
        replay.add([0], [t], [r], np.full((1, 3), 1 / 3), [0.0], np.full((1, 3), t + 1.0), [False], [trunc])
    s = gather(replay, [1], [2], 0.5, np.random.default_rng(0))
    np.testing.assert_allclose(s.nstep_return, [[2 + 0.5 * 4, 4, 0]])
    np.testing.assert_allclose(s.bootstrap_discount, [[0.25, 0.5, 1.0]])
    np.testing.assert_allclose(s.bootstrap_obs[0, :, 0], [3, 3, 3])


def test_interleaved_three_envs_match_reference_with_dynamic_horizons():
    replay = make(vec_spec(), num_envs=3, unroll=3, td=3)
    plans = [[(4, "terminated"), (9, "truncated"), (3, "terminated")], [(2, "truncated"), (11, "terminated")],
             [(7, "terminated"), (1, "terminated"), (5, "truncated")]]
    driver = Driver(replay, plans)
    rng = np.random.default_rng(1)
    for i in range(14):
        driver.step([0, 2] if i % 3 == 2 else None)  # env 1 sometimes idles
    assert replay.num_insertions == driver.insertions and len(replay) == driver.insertions
    pos, sample = gather_all(replay, driver, rng)
    assert np.any(~sample.obs_mask) and np.any(sample.bootstrap_discount == 0)


def test_sampleable_rule_live_and_ended():
    replay = make(vec_spec(), num_envs=1, unroll=2, td=3)
    driver = Driver(replay, [[(8, "terminated")]])
    for _ in range(4):
        driver.step()
    assert replay.num_sampleable == 0  # step 0 needs 5 later positions
    driver.step()
    assert replay.num_sampleable == 1
    driver.step(), driver.step()
    assert replay.num_sampleable == 3
    driver.step()  # terminates: steps 3..7 become sampleable, the final position (step 8) never
    assert replay.num_sampleable == 8
    with pytest.raises(ValueError, match="not sampleable"):
        gather(replay, [8], [1], GAMMA, np.random.default_rng(0))


def test_masks_and_random_actions_past_the_end():
    spec = vec_spec("continuous", 2)
    replay = make(spec, num_envs=1, unroll=4, td=2)
    driver = Driver(replay, [[(2, "terminated")]])
    driver.step(), driver.step()
    s = gather(replay, [1, 1], [2, 2], GAMMA, np.random.default_rng(0))  # t = step 1, final at step 2
    np.testing.assert_array_equal(s.obs_mask[0], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(s.policy_mask[0], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(s.action_mask[0], [1, 0, 0, 0])
    np.testing.assert_array_equal(s.rewards[0, 1:], 0)
    assert (s.obs[0, 2:] == s.obs[0, 1]).all()  # final obs repeated
    assert s.actions.shape == (2, 4, 2) and s.actions.dtype == np.float32
    assert np.all(np.abs(s.actions) <= 1) and not np.allclose(s.actions[0, 1:], s.actions[1, 1:])
    assert s.sampled_actions.shape == (2, 5, 4, 2) and not s.sampled_actions[0, 1:].any()
    check_sample(replay, driver, np.array([1, 1]), np.array([2, 2]), s)


def test_ring_overwrite_invalidates_links_vector():
    replay = make(vec_spec(), capacity=12, num_envs=1, unroll=1, td=2)
    driver = Driver(replay, [[(15, "truncated"), (100, "terminated")]])
    for _ in range(22):
        driver.step()
    state = replay.state_dict()
    assert len(replay) == 12 and replay.num_insertions == 24
    oldest = int(np.argmin(state["insertion"]))
    assert state["prev"][oldest] == -1 and state["step"][oldest] > 0
    stored = set(np.flatnonzero(state["insertion"] >= 0).tolist())
    links = np.concatenate([state["prev"], state["next"]])
    assert set(links[links >= 0].tolist()) <= stored
    gather_all(replay, driver, np.random.default_rng(0), total_transitions=20)


def test_ring_overwrite_withdraws_broken_frame_stacks_pixels():
    replay = make(pix_spec(stack=3), capacity=16, num_envs=2, unroll=1, td=1)
    driver = Driver(replay, [[(30, "terminated")], [(5, "terminated"), (30, "truncated")]], pixels=True)
    for _ in range(12):
        driver.step()
    state = replay.state_dict()
    for p in sampleable_positions(replay):  # every sampleable position has its whole frame stack stored
        q, need = p, min(2, state["step"][p])
        for _ in range(need):
            q = state["prev"][q]
            assert q >= 0
    heads = [p for p in range(16) if state["prev"][p] == -1 and state["step"][p] > 0]
    assert heads and all(not state["sampleable"][state["next"][h]] for h in heads if state["next"][h] >= 0)
    gather_all(replay, driver, np.random.default_rng(0), total_transitions=8)


def test_overwriting_a_live_episode_raises():
    replay = make(vec_spec(), capacity=6, num_envs=2, unroll=1, td=1)
    driver = Driver(replay, [[(100, "terminated")], [(100, "terminated")]])
    with pytest.raises(RuntimeError, match="capacity=6 is too small"):
        for _ in range(6):
            driver.step([1])


def test_frame_stacking_equals_frame_stack_observation():
    replay = make(pix_spec(stack=4), num_envs=2, unroll=3, td=2)
    plans = [[(2, "terminated"), (6, "truncated"), (9, "terminated")], [(5, "terminated"), (1, "truncated")]]
    driver = Driver(replay, plans, pixels=True)
    for _ in range(14):
        driver.step()
    pos, sample = gather_all(replay, driver, np.random.default_rng(0), total_transitions=60)
    assert sample.obs.shape == (len(pos), 4, 8, 3, 3) and sample.obs.dtype == np.uint8


def test_priorities_sampling_frequencies_and_weights():
    replay = make(vec_spec(), num_envs=1, unroll=1, td=1, alpha=0.6)
    driver = Driver(replay, [[(60, "terminated")]])
    for _ in range(60):
        driver.step()
    pos = sampleable_positions(replay)
    assert len(pos) == 60
    rng = np.random.default_rng(0)
    pri = rng.uniform(0.1, 5.0, len(pos))
    replay.update_priorities(pos, pri)
    expect = np.zeros(replay.capacity)
    expect[pos] = pri ** 0.6 / np.sum(pri ** 0.6)
    draws, weights = replay.sample(200_000, 0.4, rng)
    freq = np.bincount(draws, minlength=replay.capacity) / len(draws)
    tol = 5 * np.sqrt(expect[pos] * (1 - expect[pos]) / len(draws))
    assert np.all(np.abs(freq[pos] - expect[pos]) < tol)
    assert freq[np.setdiff1d(np.arange(replay.capacity), pos)].sum() == 0
    draws, weights = replay.sample(256, 0.7, rng)
    w = (60 * expect[draws]) ** -0.7
    np.testing.assert_allclose(weights, w / w.max(), rtol=1e-5)
    # new data enters at the current maximum priority
    driver.envs[0].plan.append((5, "terminated"))
    for _ in range(6):
        driver.step()
    state = replay.state_dict()
    new = np.setdiff1d(sampleable_positions(replay), pos)
    np.testing.assert_allclose(state["priority"][new], pri.max())


def test_max_priority_follows_the_stored_set_and_bad_priorities_raise():
    replay = make(vec_spec(), num_envs=1, unroll=1, td=1)
    driver = Driver(replay, [[(4, "terminated"), (4, "terminated")]])
    for _ in range(4):
        driver.step()
    pos = sampleable_positions(replay)
    replay.update_priorities(pos, [9.0, 1.0, 2.0, 0.0])
    replay.update_priorities(pos[:1], [3.0])  # the maximum dropped: new data now enters at 3
    for _ in range(4):
        driver.step()
    state = replay.state_dict()
    np.testing.assert_allclose(state["priority"][np.setdiff1d(sampleable_positions(replay), pos)], 3.0)
    assert state["priority"][pos[3]] == pytest.approx(1e-6)  # 0 raised to priority_eps
    replay.update_priorities(pos[[1, 1]], [50.0, 0.5])  # repeated position: the last priority wins
    driver.step()
    state = replay.state_dict()
    assert state["priority"][pos[1]] == pytest.approx(0.5) and state["priority"].max() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        replay.update_priorities(pos[:1], [np.nan])
    with pytest.raises(ValueError, match="shape"):
        replay.update_priorities(pos[:2], [1.0])


def test_uniform_sampling_has_unit_weights():
    replay = make(vec_spec(), num_envs=1, unroll=1, td=1, prioritized=False)
    driver = Driver(replay, [[(20, "terminated")]])
    for _ in range(20):
        driver.step()
    pos = sampleable_positions(replay)
    replay.update_priorities(pos, np.arange(1, 21.0))
    draws, weights = replay.sample(40_000, 1.0, np.random.default_rng(0))
    assert np.all(weights == 1)
    freq = np.bincount(draws, minlength=replay.capacity)[pos] / len(draws)
    assert np.abs(freq - 0.05).max() < 5 * np.sqrt(0.05 * 0.95 / len(draws))


def test_state_dict_round_trip_continues_live_episodes():
    spec = vec_spec("continuous", 2)
    a, b = make(spec, capacity=40, num_envs=2), make(spec, capacity=40, num_envs=2)
    driver = Driver(a, [[(7, "terminated"), (50, "truncated")], [(50, "terminated")]])
    for _ in range(25):  # wraps the ring
        driver.step()
    a.update_priorities(sampleable_positions(a), np.linspace(0.5, 2, a.num_sampleable))
    buf = io.BytesIO()
    np.savez(buf, **a.state_dict())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        b.load_state_dict({k: (data[k].item() if data[k].ndim == 0 else data[k]) for k in data.files})
    out = []
    for replay in (a, b):
        pos, w = replay.sample(64, 0.5, np.random.default_rng(3))
        out.append((pos, w, gather(replay, pos, np.full(64, 2), GAMMA, np.random.default_rng(4))))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])
    for name in ("obs", "actions", "nstep_return", "bootstrap_obs", "bootstrap_discount", "ages"):
        np.testing.assert_array_equal(getattr(out[0][2], name), getattr(out[1][2], name))
    np.testing.assert_array_equal(b.live_env_ids, [0, 1])
    driver.replay = b  # resumed self-play continues the same episodes in the restored buffer
    for _ in range(5):
        driver.step()
    gather_all(b, driver, np.random.default_rng(0))
    before = b.num_sampleable
    b.start_episodes([0, 1], np.zeros((2, 3)))  # or restarts them cleanly: old episodes close as truncated
    assert b.num_sampleable > before
    with pytest.raises(ValueError, match="capacity, num_envs"):
        make(spec, capacity=41, num_envs=2).load_state_dict(a.state_dict())


def test_input_errors_name_the_bad_value():
    replay = make(vec_spec(), num_envs=2)
    with pytest.raises(ValueError, match="no live episode"):
        replay.add([0], [1], [0.0], np.full((1, 3), 1 / 3), [0.0], np.zeros((1, 3)), [False], [False])
    with pytest.raises(ValueError, match=r"obs has shape \(2, 4\)"):
        replay.start_episodes([0, 1], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="duplicates"):
        replay.start_episodes([1, 1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="out of range"):
        replay.start_episodes([2], np.zeros((1, 3)))
    replay.start_episodes([0, 1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"actions \[5, 0\] out of range"):
        replay.add([0, 1], [5, 0], [0, 0], np.full((2, 3), 1 / 3), [0, 0], np.zeros((2, 3)), [0, 0], [0, 0])
    with pytest.raises(RuntimeError, match="no sampleable positions"):
        replay.sample(4, 0.4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="alpha=-1"):
        make(vec_spec(), alpha=-1.0)
    with pytest.raises(ValueError, match="policy_size=4"):
        make(vec_spec(), policy_size=4)
    cont = make(vec_spec("continuous", 2), num_envs=1)
    cont.start_episodes([0], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="sampled_actions"):
        cont.add([0], np.zeros((1, 2)), [0.0], np.full((1, 4), 0.25), [0.0], np.zeros((1, 3)), [False], [False])


def test_gather_rejects_bad_horizon_and_discount():
    replay = make(vec_spec(), num_envs=1, unroll=1, td=2)
    driver = Driver(replay, [[(3, "terminated")]])
    for _ in range(3):
        driver.step()
    with pytest.raises(ValueError, match=r"td_horizons must lie in \[1, td_steps=2\]"):
        gather(replay, [0], [3], GAMMA, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"td_horizons must lie in \[1, td_steps=2\]"):
        gather(replay, [0], [0], GAMMA, np.random.default_rng(0))
    with pytest.raises(ValueError, match="discount=1.5"):
        gather(replay, [0], [1], 1.5, np.random.default_rng(0))


def test_sumtree_matches_cumulative_search():
    rng = np.random.default_rng(0)
    tree = SumTree(37)
    w = rng.uniform(0, 1, 37) * (rng.random(37) > 0.3)
    tree.set(np.arange(37), w)
    u = rng.random(5000) * w.sum()
    np.testing.assert_array_equal(tree.find(u), np.searchsorted(np.cumsum(w), u, side="right"))
    other = SumTree(37)
    other.set_all(w)
    np.testing.assert_allclose(other.tree, tree.tree)
    assert np.all(w[tree.sample(2000, rng)] > 0)


def test_memory_and_sampling_speed():
    pixel = Replay(ReplayConfig(capacity=10_000), EnvSpec("a", (12, 96, 96), "uint8", 4, "discrete", 18, 0.997, 4,
                                                          27000),
                   num_envs=1, unroll_steps=5, td_steps=5, policy_size=18)
    per_position = pixel.nbytes / pixel.capacity
    assert 96 * 96 * 3 < per_position < 96 * 96 * 3 + 400
    replay = make(vec_spec(), capacity=100_000, num_envs=100, unroll=5, td=5)
    e, rng = 100, np.random.default_rng(0)
    ids, pol = np.arange(e), np.full((e, 3), 1 / 3, np.float32)
    replay.start_episodes(ids, np.zeros((e, 3)))
    for _ in range(999):
        replay.add(ids, rng.integers(0, 3, e), rng.random(e), pol, rng.random(e), np.zeros((e, 3)),
                   np.zeros(e, bool), np.zeros(e, bool))
    assert len(replay) == 100_000 and replay.num_sampleable == 100 * 990
    replay.sample(256, 0.4, rng)
    start = time.perf_counter()
    for _ in range(50):
        replay.sample(256, 0.4, rng)
    per_call = (time.perf_counter() - start) / 50
    print(f"bytes/position (96x96x3 pixels) {per_position:.0f}; sample B=256 from 100k: {per_call * 1e6:.0f} us")
    assert per_call < 0.01


def test_content_keys_change_exactly_when_the_stacked_observation_changes():
    """Through ring overwrites (which also cut the frame history of surviving positions): a position whose
    key is unchanged shows the same stacked observation, and one whose observation changed has a new key."""
    replay = make(pix_spec(stack=3), capacity=16, num_envs=2, unroll=1, td=1)
    driver = Driver(replay, [[(30, "terminated")], [(5, "terminated"), (30, "truncated")]], pixels=True)
    before, cuts, rewrites = {}, 0, 0
    for _ in range(40):
        driver.step()
        stored = np.flatnonzero(replay.state_dict()["insertion"] >= 0)
        keys = replay.content_keys(stored)
        stacks = replay.stacked_obs(stored)
        for p, key, stack in zip(stored.tolist(), keys.tolist(), stacks):
            if p in before:
                old_key, old_stack, old_insertion = before[p]
                same = np.array_equal(old_stack, stack)
                assert (old_key == key) == same, p
                if not same:
                    rewritten = old_insertion != replay.state_dict()["insertion"][p]
                    rewrites += rewritten
                    cuts += not rewritten
            before[p] = (key, stack, replay.state_dict()["insertion"][p])
    assert rewrites > 0 and cuts > 0


def test_state_dict_copies_unless_told_not_to():
    """A checkpoint reads the buffer's own arrays (``copy=False``: no second pixel replay in memory while it is
    written); every other caller gets a snapshot that later adds do not change."""
    replay = make(vec_spec(), capacity=12, num_envs=1, unroll=1, td=2)
    driver = Driver(replay, [[(100, "terminated")]])
    for _ in range(3):
        driver.step()
    snapshot, live = replay.state_dict(), replay.state_dict(copy=False)
    assert not np.shares_memory(snapshot["obs"], live["obs"])
    assert np.array_equal(snapshot["obs"], live["obs"]) and np.array_equal(snapshot["insertion"], live["insertion"])
    driver.step()
    assert np.array_equal(replay.state_dict()["insertion"], live["insertion"])
    assert not np.array_equal(snapshot["insertion"], live["insertion"])
