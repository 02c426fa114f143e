"""Reanalyze (ezrobot.reanalyze): value targets against a hand computation with the target network,
absorbing states past a termination, the off-policy horizon, value-prefix targets and reanalyze_ratio.

The replay holds three hand-written episodes of one 4-d vector task (one env each, written one after the
other so that ring positions are consecutive): A runs on (12 actions, no end yet), B terminates after 4
actions, C is truncated after 4 actions.
"""
import dataclasses

import numpy as np
import pytest
import torch

from ezrobot.agent import SearchAgent
from ezrobot.config import Config, derive
from ezrobot.envs.spec import EnvSpec
from ezrobot.nets import build_model
from ezrobot.nets.config import ModelConfig
from ezrobot.reanalyze import Reanalyzer
from ezrobot.replay.buffer import Replay
from ezrobot.replay.config import ReplayConfig

GAMMA = 0.9
SPEC = EnvSpec("test/vector", (4,), "float32", 1, "discrete", 3, GAMMA, 1, 100)
K, N = 3, 3  # unroll steps, td steps
STORED_POLICY = np.array([0.1, 0.2, 0.7], np.float32)
EPISODES = {"A": (0, 12, None), "B": (13, 4, "term"), "C": (18, 4, "trunc")}  # first position, actions, end


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models: two OpenMP threads on a busy 2-core machine were measured 50x slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _obs(episode: int, step: int) -> np.ndarray:
    return np.array([episode, step / 10.0, np.sin(step + episode), np.cos(2.0 * step)], np.float32)


def _reward(episode: int, step: int) -> float:
    return 1.0 + 0.5 * step - 0.3 * episode


def _config(reanalyze_ratio=0.0, dynamic_td=False, env_steps=10_000, use_value_prefix=False, bf16=False,
            cache=True, policy_from_reanalysis_only=False, reanalyze_simulations=0) -> Config:
    cfg = Config()
    cfg.env_steps = env_steps
    cfg.model = ModelConfig(preset="small", use_value_prefix=use_value_prefix, latent_dim=16, mlp_hidden=32,
                            head_hidden=[16], lstm_hidden=16, projection_dim=16, predictor_hidden=8,
                            action_embedding=8)
    cfg.search = dataclasses.replace(cfg.search, num_simulations=4, value_prefix_horizon=2)
    cfg.train = dataclasses.replace(cfg.train, unroll_steps=K, td_steps=N, dynamic_td=dynamic_td,
                                    reanalyze_ratio=reanalyze_ratio, start_transitions=0, bf16=bf16,
                                    cache_bootstrap_values=cache,
                                    policy_from_reanalysis_only=policy_from_reanalysis_only,
                                    reanalyze_simulations=reanalyze_simulations)
    cfg.replay = ReplayConfig(capacity=100)
    return cfg


def _fill(replay: Replay) -> None:
    for env, (ep_id, (first, actions, end)) in enumerate(EPISODES.items()):
        replay.start_episodes([env], _obs(env, 0)[None])
        for step in range(actions):
            last = step == actions - 1
            replay.add([env], [step % 3], [_reward(env, step)], STORED_POLICY[None], [0.5], _obs(env, step + 1)[None],
                       [last and end == "term"], [last and end == "trunc"])


def _reanalyzer(**kw):
    cfg = _config(**kw)
    torch.manual_seed(0)
    model = build_model(cfg.model, SPEC)
    with torch.no_grad():  # the value head starts at zero: randomise so that V_target(o) varies with o
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    model.eval()
    replay = Replay(cfg.replay, SPEC, num_envs=3, unroll_steps=K, td_steps=N, policy_size=3)
    _fill(replay)
    agent = SearchAgent(cfg.search, False, GAMMA, torch.device("cpu"))
    return Reanalyzer(cfg, SPEC, derive(cfg, 1), replay, model, agent, torch.device("cpu")), model


@torch.no_grad()
def _v(model, env: int, step: int) -> float:
    _, logits, _ = model.initial_inference(torch.as_tensor(_obs(env, step))[None])
    return float(model.value_support.logits_to_scalar(logits)[0])


def _hand_value(model, env: int, s: int, n: int):
    """(z, trained) for the state at step s of episode ``env`` with horizon n."""
    _, actions, end = list(EPISODES.values())[env]
    if end is not None and s > actions:
        return 0.0, end == "term"  # absorbing past a termination; masked past a truncation
    m = min(n, actions - s) if end is not None else n
    ret = sum(GAMMA ** i * _reward(env, s + i) for i in range(m))
    if end == "term" and s + m == actions:
        return ret, True
    return ret + GAMMA ** m * _v(model, env, s + m), True


def _locate(position: int):
    for env, (first, actions, _) in enumerate(EPISODES.values()):
        if first <= position <= first + actions:
            return env, position - first
    raise AssertionError(position)


SAMPLES = [0, 2, 6, 13, 14, 16, 18, 20, 21]


def _batch(reanalyzer, positions, seed=0, step=0):
    weights = np.linspace(0.5, 1.0, len(positions)).astype(np.float32)
    return reanalyzer.make_batch(np.array(positions), weights, step, np.random.default_rng(seed))


def test_value_targets_match_the_hand_computation():
    reanalyzer, model = _reanalyzer()
    batch, metrics = _batch(reanalyzer, SAMPLES)
    assert batch.value.shape == (len(SAMPLES), K + 1)
    for row, pos in enumerate(SAMPLES):
        env, t = _locate(pos)
        for k in range(K + 1):
            z, trained = _hand_value(model, env, t + k, N)
            assert batch.value[row, k].item() == pytest.approx(z, abs=1e-4), (pos, k)
            assert batch.value_mask[row, k].item() == float(trained), (pos, k)
    np.testing.assert_allclose(batch.weights.numpy(), np.linspace(0.5, 1.0, len(SAMPLES)), rtol=1e-6)
    assert metrics["reanalyze/td_horizon_mean"] == N


def test_bf16_bootstrap_values_stay_close_to_float32():
    """``train.bf16`` autocasts the target network's bootstrap forward passes: the value targets move by
    bfloat16 rounding only, and the masks are unchanged."""
    exact, _ = _batch(_reanalyzer()[0], SAMPLES)
    rounded, _ = _batch(_reanalyzer(bf16=True)[0], SAMPLES)
    scale = exact.value.abs().max().item()
    assert 0 < (rounded.value - exact.value).abs().max().item() <= 0.05 * scale
    assert torch.equal(rounded.value_mask, exact.value_mask)


def test_cached_bootstrap_values_equal_fresh_ones_until_the_target_changes():
    cached, model = _reanalyzer()
    fresh, fresh_model = _reanalyzer(cache=False)
    assert cached.cache is not None and fresh.cache is None
    for seed, positions in enumerate([SAMPLES, SAMPLES[::-1], [0, 0, 1, 2, 13]]):
        got, metrics = _batch(cached, positions, seed)
        want, _ = _batch(fresh, positions, seed)
        torch.testing.assert_close(got.value, want.value, rtol=0, atol=1e-5)
    assert 0.5 < metrics["reanalyze/value_cache_hit_rate"] < 1  # later batches reuse the first one's values
    before, _ = _batch(cached, SAMPLES)
    with torch.no_grad():  # new target weights: the cache serves stale values until told
        for net in (model, fresh_model):
            for p in net.parameters():
                p.mul_(-1.0)
    stale, _ = _batch(cached, SAMPLES)
    assert torch.equal(stale.value, before.value)
    cached.target_changed()
    renewed, _ = _batch(cached, SAMPLES)
    torch.testing.assert_close(renewed.value, _batch(fresh, SAMPLES)[0].value, rtol=0, atol=1e-5)
    assert (renewed.value - stale.value).abs().max() > 1e-3


def test_absorbing_steps_after_a_termination():
    reanalyzer, _ = _reanalyzer()
    batch, _ = _batch(reanalyzer, [16])  # B step 3: its last action; k = 1 is the terminal position
    assert batch.obs_mask[0].tolist() == [1, 1, 0, 0]
    assert batch.action_mask[0].tolist() == [1, 0, 0]
    assert batch.policy_mask[0].tolist() == [1, 0, 0, 0]
    assert batch.value[0, 1:].tolist() == [0.0, 0.0, 0.0]
    assert batch.value_mask[0].tolist() == [1, 1, 1, 1]
    assert batch.reward_mask[0].tolist() == [1, 1, 1]
    assert batch.value_prefix[0].tolist() == pytest.approx([_reward(1, 3), 0.0, 0.0])


def test_next_continues_is_zero_only_where_the_first_action_terminated():
    """The critic's one-step target bootstraps from t+1 except after a termination: B's last action (16)
    terminates, B's earlier one (15), A's (2) and C's last, truncated one (21) continue."""
    reanalyzer, _ = _reanalyzer()
    batch, _ = _batch(reanalyzer, [16, 15, 2, 21])
    assert batch.next_continues.tolist() == [0.0, 1.0, 1.0, 1.0]


def test_steps_after_a_truncation_are_masked():
    reanalyzer, model = _reanalyzer()
    batch, _ = _batch(reanalyzer, [21])  # C step 3: its last action; k = 1 is the truncated position
    assert batch.obs_mask[0].tolist() == [1, 1, 0, 0]
    assert batch.value_mask[0].tolist() == [1, 1, 0, 0]
    assert batch.reward_mask[0].tolist() == [1, 0, 0]
    assert batch.value[0, 1].item() == pytest.approx(_v(model, 2, 4), abs=1e-4)  # bootstraps from o_T


def test_value_prefix_targets_reset_every_horizon():
    reanalyzer, _ = _reanalyzer(use_value_prefix=True)  # horizon 2
    batch, _ = _batch(reanalyzer, [2])
    r = [_reward(0, s) for s in (2, 3, 4)]
    assert batch.value_prefix[0].tolist() == pytest.approx([r[0], r[0] + r[1], r[2]])


def test_dynamic_td_horizon_shrinks_with_age():
    # T = 20 agent steps: horizon l = clip(3 - floor(age / 6), 1, 3); 23 positions were inserted.
    reanalyzer, model = _reanalyzer(dynamic_td=True, env_steps=20)
    positions = [0, 6, 13, 18]
    ages = [23 - p for p in positions]
    horizons = [int(np.clip(N - a // 6, 1, N)) for a in ages]
    assert horizons == [1, 1, 2, 3]
    batch, metrics = _batch(reanalyzer, positions)
    assert metrics["reanalyze/td_horizon_mean"] == pytest.approx(np.mean(horizons))
    for row, (pos, n) in enumerate(zip(positions, horizons)):
        env, t = _locate(pos)
        for k in range(K + 1):
            z, _ = _hand_value(model, env, t + k, n)
            assert batch.value[row, k].item() == pytest.approx(z, abs=1e-4), (pos, k)


def test_reanalyze_ratio_zero_keeps_stored_policies():
    reanalyzer, _ = _reanalyzer(reanalyze_ratio=0.0)
    batch, _ = _batch(reanalyzer, SAMPLES)
    mask = batch.policy_mask.bool()
    assert torch.allclose(batch.policy[mask], torch.as_tensor(STORED_POLICY).expand(int(mask.sum()), 3))
    assert float(batch.policy[~mask].abs().sum()) == 0.0


@pytest.mark.parametrize("ratio, replaced", [(1.0, 4), (0.5, 2)])
def test_reanalyze_ratio_replaces_the_first_rows(ratio, replaced):
    reanalyzer, _ = _reanalyzer(reanalyze_ratio=ratio)
    positions = [2, 6, 14, 19]
    batch, _ = _batch(reanalyzer, positions)
    stored = torch.as_tensor(STORED_POLICY)
    for row in range(len(positions)):
        for k in range(K + 1):
            if not batch.policy_mask[row, k]:
                continue
            policy = batch.policy[row, k]
            if row < replaced:
                assert not torch.allclose(policy, stored, atol=1e-3), (row, k)
                assert policy.sum().item() == pytest.approx(1.0, abs=1e-5)
                assert (policy >= 0).all()
            else:
                assert torch.allclose(policy, stored), (row, k)


def test_policy_from_reanalysis_only_masks_the_stored_rows():
    positions = [2, 6, 14, 19]
    plain, _ = _batch(_reanalyzer(reanalyze_ratio=0.5)[0], positions)
    only, _ = _batch(_reanalyzer(reanalyze_ratio=0.5, policy_from_reanalysis_only=True)[0], positions)
    assert plain.policy_mask[2:].sum() > 0  # the stored rows do have policy targets ...
    assert only.policy_mask[2:].sum() == 0  # ... that are no longer trained
    assert torch.equal(only.policy_mask[:2], plain.policy_mask[:2])
    for name in ("value", "value_mask", "value_prefix", "reward_mask", "obs_mask", "policy"):
        assert torch.equal(getattr(only, name), getattr(plain, name)), name


def test_reanalyze_simulations_sets_the_search_budget(monkeypatch):
    reanalyzer, _ = _reanalyzer(reanalyze_ratio=1.0, reanalyze_simulations=7)
    seen = []
    search = reanalyzer.agent.search
    monkeypatch.setattr(reanalyzer.agent, "search",
                        lambda *a, **kw: seen.append(kw.get("num_simulations")) or search(*a, **kw))
    batch, _ = _batch(reanalyzer, [2, 6])
    assert seen == [7]
    visited = batch.policy[batch.policy_mask.bool()]
    assert visited.sum(-1).allclose(torch.ones(len(visited)))


def test_batch_shapes_and_observations():
    reanalyzer, _ = _reanalyzer()
    batch, _ = _batch(reanalyzer, [2, 14])
    assert batch.obs.shape == (2, K + 1, 4) and batch.actions.shape == (2, K)
    assert batch.policy.shape == (2, K + 1, 3) and batch.value_prefix.shape == (2, K)
    np.testing.assert_allclose(batch.obs[0].numpy(), np.stack([_obs(0, s) for s in range(2, 6)]))
    assert batch.actions[0].tolist() == [2 % 3, 3 % 3, 4 % 3]
