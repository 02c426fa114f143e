"""Golden tests: the numba engine and the plain-Python reference give identical trees and outputs."""
import dataclasses

import numpy as np
import pytest

from ezrobot.mcts import RecurrentOutput, RootInput, SearchConfig, search
from mcts_reference import reference_search


class TableModel:
    """Deterministic fake model: outputs from seeded tables, shifted by the action taken."""

    def __init__(self, batch, num_slots, width, seed, equal_priors=False):
        g = np.random.default_rng(seed)
        self.v = g.uniform(-1, 1, (batch, num_slots)).astype(np.float32)
        self.vp = g.uniform(-0.3, 0.3, (batch, num_slots)).astype(np.float32)
        self.p = g.standard_normal((batch, num_slots, width)).astype(np.float32)
        if equal_priors:
            self.p[:] = 0.0
            self.v = np.round(self.v, 1)

    def one(self, b, parent, action, child):
        shift = float(np.sum(action)) if np.ndim(action) else float(action)
        value = np.float32(self.v[b, child] + 0.05 * shift)
        return value, self.vp[b, child], self.p[b, child]

    def batched(self, parents, actions, children, reset):
        outs = [self.one(b, parents[b], actions[b], children[b]) for b in range(len(parents))]
        return RecurrentOutput(np.array([o[0] for o in outs], np.float32), np.array([o[1] for o in outs], np.float32),
                               np.stack([o[2] for o in outs]).astype(np.float32))


def run_both(cfg, batch, width, continuous, train, seed=0, equal_priors=False, temperature=1.0,
             use_value_prefix=True):
    model = TableModel(batch, cfg.num_simulations + 1, 2 * width if continuous else width, seed, equal_priors)
    root = RootInput(model.v[:, 0].copy(), model.p[:, 0].copy(), 0.99, continuous, use_value_prefix)
    out = search(root, model.batched, cfg, np.random.default_rng(seed + 100), train=train, temperature=temperature)
    ref = reference_search(root.value, root.policy, 0.99, continuous, model.one, cfg,
                           np.random.default_rng(seed + 100), train=train, temperature=temperature,
                           use_value_prefix=use_value_prefix)
    return out, ref


def assert_same(out, ref):
    for name, want in ref.items():
        got = getattr(out, name)
        if want is None:
            assert got is None
            continue
        assert got.shape == want.shape, name
        if np.issubdtype(want.dtype, np.floating):
            assert np.isfinite(got).all(), name
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


CASES = [
    # (variant, continuous, overrides; "use_value_prefix" is the root's, the rest the SearchConfig's)
    ("puct", False, {}),
    ("puct", False, {"max_depth": 2}),
    ("puct", False, {"value_prefix_horizon": 2}),
    ("puct", False, {"use_value_prefix": False}),
    ("gumbel", False, {}),
    ("gumbel", False, {"gumbel_top_m": 4, "max_depth": 3}),
    ("gumbel", False, {"value_prefix_horizon": 3, "gumbel_top_m": 2}),
    ("puct", True, {"num_sampled_actions": 5, "num_sampled_actions_widened": 2}),
    ("puct", True, {"num_sampled_actions": 6, "num_sampled_actions_widened": 3, "max_depth": 3}),
    ("puct", True, {"num_sampled_actions": 1, "num_sampled_actions_widened": 0}),
    ("gumbel", True, {"num_sampled_actions": 6, "num_sampled_actions_widened": 4}),
    ("gumbel", True, {"num_sampled_actions": 6, "num_sampled_actions_widened": 4, "sampled_gumbel_noise": True}),
    ("gumbel", True, {"num_sampled_actions": 6, "num_sampled_actions_widened": 4,
                      "sampled_gumbel_importance": True}),
    ("gumbel", True, {"num_sampled_actions": 7, "num_sampled_actions_widened": 3, "sampled_gumbel_noise": True,
                      "sampled_gumbel_importance": True, "max_depth": 2}),
    ("gumbel", True, {"num_sampled_actions": 1, "num_sampled_actions_interior": 1,
                      "num_sampled_actions_widened": 0}),
    ("gumbel", False, {"q_normalization": "node"}),
    ("gumbel", True, {"num_sampled_actions": 6, "num_sampled_actions_widened": 0, "q_normalization": "node"}),
    ("gumbel", True, {"num_sampled_actions": 6, "num_sampled_actions_widened": 0, "sampled_gumbel_noise": True}),
    ("gumbel", True, {"num_sampled_actions": 5, "num_sampled_actions_interior": 3, "q_normalization": "node",
                      "max_depth": 3}),
]


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("variant,continuous,overrides", CASES)
def test_engine_matches_reference(variant, continuous, overrides, train, batch):
    overrides = dict(overrides)
    use_value_prefix = overrides.pop("use_value_prefix", True)
    cfg = SearchConfig(variant=variant, num_simulations=12, **overrides)
    width = 2 if continuous else 5
    out, ref = run_both(cfg, batch, width, continuous, train, use_value_prefix=use_value_prefix)
    assert_same(out, ref)
    assert (out.visit_counts.sum(1) == cfg.num_simulations).all()


@pytest.mark.parametrize("variant", ["puct", "gumbel"])
def test_equal_priors_ties_and_zero_visits(variant):
    # equal priors and rounded values create exact ties; N < A leaves children unvisited
    cfg = SearchConfig(variant=variant, num_simulations=6)
    out, ref = run_both(cfg, 7, 9, False, train=False, equal_priors=True)
    assert_same(out, ref)
    assert (out.visit_counts == 0).any()
    assert np.isfinite(out.q_values).all() and np.isfinite(out.policy).all()


def test_k1_discrete_and_terminal_root_children():
    # one action and depth bound 1: every simulation after the first re-backs up the terminal child
    cfg = SearchConfig(variant="puct", num_simulations=5, max_depth=1)
    out, ref = run_both(cfg, 7, 1, False, train=True)
    assert_same(out, ref)
    assert (out.max_depth == 1).all()
    assert (out.visit_counts[:, 0] == 5).all()


def test_temperature_sampling_matches_reference():
    cfg = SearchConfig(variant="puct", num_simulations=20)
    out, ref = run_both(cfg, 7, 4, False, train=True, temperature=0.5)
    assert_same(out, ref)


def test_longer_search_matches_reference():
    cfg = dataclasses.replace(SearchConfig(), num_simulations=40)
    out, ref = run_both(cfg, 3, 6, False, train=True, seed=3)
    assert_same(out, ref)


@pytest.mark.parametrize("continuous", [False, True])
def test_node_normalisation_sharpens_the_improved_policy(continuous):
    """Per-node min-max spreads one node's candidates over [0, 1]; the tree's range is at least as wide,
    so the node's improved policy is at least as far from the prior, and the two settings differ."""
    outs = {}
    for mode in ("tree", "node"):
        cfg = SearchConfig(variant="gumbel", num_simulations=16, num_sampled_actions=8,
                           num_sampled_actions_widened=0, q_normalization=mode)
        outs[mode], _ = run_both(cfg, 7, 2 if continuous else 8, continuous, train=False, seed=3)
    tree, node = outs["tree"].policy, outs["node"].policy
    assert not np.allclose(tree, node)
    prior = outs["tree"].prior
    np.testing.assert_array_equal(prior, outs["node"].prior)
    assert (np.abs(node - prior).sum(1) >= np.abs(tree - prior).sum(1) - 1e-6).all()
