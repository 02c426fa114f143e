"""The batched one-step look-ahead (``train.reanalyze_search=one_step``) gives the numbers of the numba
sampled Gumbel search run with one simulation per considered root sample, from the same generator state."""
import dataclasses

import numpy as np
import pytest
import torch

from ezrobot.agent import SearchAgent
from ezrobot.envs.spec import EnvSpec
from ezrobot.lookahead import importance_logits, one_step_search
from ezrobot.mcts import SearchConfig
from ezrobot.nets import build_model
from ezrobot.nets.config import ModelConfig

D, B, GAMMA = 6, 24, 0.99
SPEC = EnvSpec("test/vector6", (9,), "float32", 1, "continuous", D, GAMMA, 2, 100, reward_bound=2.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build_model(ModelConfig(preset="small", use_value_prefix=False, latent_dim=16, mlp_hidden=32,
                                  head_hidden=[16], projection_dim=16, predictor_hidden=8, action_embedding=8), SPEC)
    with torch.no_grad():  # spread the heads so that rewards, values and Q differ between samples
        for p in net.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return net.eval()


def _search_config(**kw) -> SearchConfig:
    base = dict(variant="gumbel", num_sampled_actions=16, num_sampled_actions_widened=12,
                num_sampled_actions_interior=2, gumbel_top_m=16)
    base.update(kw)
    cfg = SearchConfig(**base)
    return dataclasses.replace(cfg, num_simulations=min(cfg.gumbel_top_m, cfg.num_sampled_actions))


@pytest.mark.parametrize("kw", [
    dict(sampled_gumbel_importance=True),
    dict(sampled_gumbel_importance=False),  # EZ-V2's released root: uniform logits, widened samples
    dict(sampled_gumbel_importance=True, sampled_gumbel_noise=True),
    dict(sampled_gumbel_noise=True),
    dict(sampled_gumbel_importance=True, sampled_gumbel_noise=True, gumbel_top_m=8),
    dict(num_sampled_actions_widened=0, c_scale=0.3),
])
def test_one_step_search_equals_the_tree_search(model, kw):
    cfg = _search_config(**kw)
    obs = torch.randn(B, 9, generator=torch.Generator().manual_seed(1)) * 2.0
    tree = SearchAgent(cfg, True, GAMMA, torch.device("cpu")).search(model, obs, np.random.default_rng(3), train=True)
    flat = one_step_search(model, obs, cfg, GAMMA, np.random.default_rng(3))
    np.testing.assert_allclose(flat.sampled_actions, tree.sampled_actions, atol=1e-6)
    np.testing.assert_allclose(flat.policy, tree.policy, atol=2e-4)
    np.testing.assert_allclose(flat.q_values, tree.q_values, rtol=2e-4, atol=2e-4)  # batch-size rounding
    np.testing.assert_allclose(flat.sve_value, tree.sve_value, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(flat.action, tree.action, atol=1e-6)
    assert np.ptp(tree.q_values, axis=1).min() > 1e-3  # the comparison is not between flat Q values


def test_importance_logits_by_hand():
    """K = 2, D = 1, one widened sample (scale 3): log(pi / beta) by the mixture density, then normalised."""
    eps = torch.tensor([[[0.5], [1.0]]])
    logits = importance_logits(eps, num_widened=1, widen_scale=3.0)

    def ratio(z):
        pi = np.exp(-0.5 * z * z)
        wide = np.exp(-0.5 * (z / 3.0) ** 2) / 3.0
        return pi / (0.5 * pi + 0.5 * wide)

    r = np.array([ratio(0.5), ratio(3.0)])
    np.testing.assert_allclose(logits.numpy()[0], np.log(r / r.sum()), rtol=1e-9)


def _continuous_reanalyzer(model, search: str):
    from ezrobot.config import Config, derive
    from ezrobot.reanalyze import Reanalyzer
    from ezrobot.replay.buffer import Replay
    from ezrobot.replay.config import ReplayConfig

    cfg = Config()
    cfg.search = _search_config(sampled_gumbel_importance=True)
    cfg.train = dataclasses.replace(cfg.train, unroll_steps=3, td_steps=3, reanalyze_ratio=0.5,
                                    reanalyze_search=search, reanalyze_simulations=16, start_transitions=0)
    cfg.replay = ReplayConfig(capacity=64)
    replay = Replay(cfg.replay, SPEC, num_envs=1, unroll_steps=3, td_steps=3, policy_size=16)
    rng = np.random.default_rng(5)
    replay.start_episodes([0], rng.standard_normal((1, 9)).astype(np.float32))
    for _ in range(20):
        sampled = np.tanh(rng.standard_normal((1, 16, D))).astype(np.float32)
        replay.add([0], sampled[:, 0], [0.5], np.full((1, 16), 1 / 16, np.float32), [0.0],
                   rng.standard_normal((1, 9)).astype(np.float32), [False], [False], sampled_actions=sampled)
    agent = SearchAgent(cfg.search, True, GAMMA, torch.device("cpu"))
    return Reanalyzer(cfg, SPEC, derive(cfg, 2), replay, model, agent, torch.device("cpu"))


def test_reanalyzer_one_step_targets_equal_the_tree_targets(model):
    """The policy targets of a batch (rows re-searched and rows kept) do not depend on which of the two
    computes them."""
    positions, weights = np.arange(8), np.ones(8, np.float32)
    batches = [_continuous_reanalyzer(model, search).make_batch(positions, weights, 0, np.random.default_rng(2))[0]
               for search in ("tree", "one_step")]
    for name in ("policy", "sampled_actions", "best_action", "value", "policy_mask"):
        np.testing.assert_allclose(getattr(batches[1], name).numpy(), getattr(batches[0], name).numpy(), atol=2e-4,
                                   err_msg=name)
    assert batches[0].policy_mask[:4].all() and not np.allclose(batches[0].policy[:4].numpy(), 1 / 16)


def test_critic_look_ahead_takes_each_sample_q_from_the_critic_minimum():
    """``critic=True`` (``train.reanalyze_search=critic``): the completed Q of every sample is
    min_i Q_i(s, a_k), and the chosen action is the argmax of logits + sigma(q) over the considered samples."""
    torch.manual_seed(0)
    net = build_model(ModelConfig(preset="small", use_value_prefix=False, latent_dim=16, mlp_hidden=32,
                                  head_hidden=[16], projection_dim=16, predictor_hidden=8, action_embedding=8,
                                  critic_heads=2), SPEC)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5 * torch.randn_like(p))
    net.eval()
    cfg = _search_config(sampled_gumbel_importance=True)
    obs = torch.randn(B, 9, generator=torch.Generator().manual_seed(1)) * 2.0
    out = one_step_search(net, obs, cfg, GAMMA, np.random.default_rng(3), critic=True)
    with torch.no_grad():
        latent, _, _ = net.initial_inference(obs)
        acts = torch.from_numpy(out.sampled_actions)
        q = net.critic_q(latent.repeat_interleave(16, 0), acts.reshape(-1, D)).min(0).values.reshape(B, 16)
    np.testing.assert_allclose(out.q_values, q.numpy(), rtol=1e-5, atol=1e-5)  # top-m = K: all considered
    eps = np.random.default_rng(3).standard_normal((B, 16, D), dtype=np.float32)
    logits = importance_logits(torch.from_numpy(eps), 12, cfg.widen_std_scale).numpy()
    qn = (q.numpy() - q.numpy().min(1, keepdims=True)) / np.maximum(np.ptp(q.numpy(), 1, keepdims=True),
                                                                   cfg.min_max_floor)
    chosen = (logits + (cfg.c_visit + 1) * cfg.c_scale * qn).argmax(1)
    np.testing.assert_allclose(out.action, out.sampled_actions[np.arange(B), chosen], atol=1e-6)
    plain = one_step_search(net, obs, cfg, GAMMA, np.random.default_rng(3))
    assert np.abs(plain.q_values - out.q_values).max() > 1e-3  # not the model's r + γ V(g(s, a))


def test_importance_target_reweights_the_searched_policy_by_pi_over_beta(model):
    """``target_importance`` (``train.policy_loss=importance``) under EZ-V2's uniform root: the same samples,
    Q and a*, and the policy target softmax(log(pi / beta) + sigma(q)), i.e. the uniform root's pi' times
    pi / beta, renormalised."""
    cfg = _search_config(sampled_gumbel_importance=False)
    obs = torch.randn(B, 9, generator=torch.Generator().manual_seed(1)) * 2.0
    plain = one_step_search(model, obs, cfg, GAMMA, np.random.default_rng(3))
    out = one_step_search(model, obs, cfg, GAMMA, np.random.default_rng(3), target_importance=True)
    for name in ("sampled_actions", "action", "q_values", "sve_value"):
        np.testing.assert_array_equal(getattr(out, name), getattr(plain, name), err_msg=name)
    eps = np.random.default_rng(3).standard_normal((B, 16, D), dtype=np.float32)
    ratio = np.exp(importance_logits(torch.from_numpy(eps), 12, cfg.widen_std_scale).numpy())
    expected = plain.policy * ratio
    np.testing.assert_allclose(out.policy, expected / expected.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    assert np.abs(out.policy - plain.policy).max() > 0.05


@pytest.mark.parametrize("dim", [1, 6])
def test_where_q_says_nothing_the_importance_target_keeps_sigma(dim):
    """With sigma(q) = 0 the cross-entropy fit of a Gaussian to the target over the K = 16 samples (4 from
    pi, 12 from 3 sigma) has the second moment sum_k w_k z_k^2 / D of the sample offsets z in units of sigma:
    about 1 under the importance weights (sigma stays), (4 + 12 * 9) / 16 = 7 under uniform ones (sigma
    grows by 2.6x per generation of targets, EZ-V2's root without the clip: docs/RESULTS.md)."""
    eps = torch.from_numpy(np.random.default_rng(0).standard_normal((4096, 16, dim)))
    z2 = ((eps * torch.tensor([1.0] * 4 + [3.0] * 12)[None, :, None]) ** 2).sum(-1) / dim
    weights = torch.softmax(importance_logits(eps, 12, 3.0), dim=-1)
    assert 0.85 < float((weights * z2).sum(-1).mean()) < 1.15
    assert 6.0 < float(z2.mean()) < 8.0
