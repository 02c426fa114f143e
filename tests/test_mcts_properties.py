"""Property tests of the search engine (hypothesis) and input validation."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ezrobot.mcts import RecurrentOutput, RootInput, SearchConfig, search
from ezrobot.mcts.gumbel import considered_visits
from ezrobot.mcts.qtransforms import normalize
from ezrobot.mcts.tree import get_buffers


def table_model(batch, slots, width, seed):
    g = np.random.default_rng(seed)
    v = g.uniform(-1, 1, (slots, batch)).astype(np.float32)
    vp = g.uniform(-0.1, 0.1, (slots, batch)).astype(np.float32)
    p = g.standard_normal((slots, batch, width)).astype(np.float32)

    def fn(parents, actions, children, reset):
        s = int(children[0])
        return RecurrentOutput(v[s], vp[s], p[s])

    return fn, RootInput(v[0], p[0], 0.997, False), p[0]


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 6), actions=st.integers(1, 10), sims=st.integers(1, 30),
       variant=st.sampled_from(["puct", "gumbel"]), train=st.booleans(), seed=st.integers(0, 1000),
       max_depth=st.integers(0, 4))
def test_root_visits_sum_to_simulations(batch, actions, sims, variant, train, seed, max_depth):
    fn, root, _ = table_model(batch, sims + 1, actions, seed)
    cfg = SearchConfig(variant=variant, num_simulations=sims, max_depth=max_depth)
    out = search(root, fn, cfg, np.random.default_rng(seed), train=train)
    assert (out.visit_counts.sum(1) == sims).all()
    assert np.allclose(out.policy.sum(1), 1.0, atol=1e-5)
    assert np.isfinite(out.q_values).all() and np.isfinite(out.root_value).all()
    assert ((out.action >= 0) & (out.action < actions)).all()
    if max_depth:
        assert (out.max_depth <= max_depth).all()


@settings(max_examples=25, deadline=None)
@given(m=st.sampled_from([2, 4, 8, 16]), actions=st.integers(2, 18), extra=st.integers(0, 20),
       seed=st.integers(0, 1000))
def test_gumbel_visits_all_top_m(m, actions, extra, seed):
    m_eff = min(m, actions)
    sims = int(np.ceil(m_eff * np.log2(max(m_eff, 2)))) + extra
    fn, root, logits = table_model(3, sims + 1, actions, seed)
    cfg = SearchConfig(variant="gumbel", num_simulations=sims, gumbel_top_m=m)
    out = search(root, fn, cfg, np.random.default_rng(seed), train=False)
    for b in range(3):
        top = set(np.argsort(-logits[b].astype(np.float64), kind="stable")[:m_eff].tolist())
        visited = set(np.flatnonzero(out.visit_counts[b]).tolist())
        assert visited == top


@settings(max_examples=200, deadline=None)
@given(q=st.floats(-1e6, 1e6), lo=st.floats(-1e3, 1e3), span=st.floats(-10, 1e3))
def test_normalized_q_in_unit_interval(q, lo, span):
    assert 0.0 <= normalize(q, lo, lo + span, 0.01) <= 1.0


@pytest.mark.parametrize("variant,continuous", [("puct", False), ("gumbel", False), ("puct", True),
                                                ("gumbel", True)])
def test_same_seed_same_tree(variant, continuous):
    batch, sims = 4, 16
    g = np.random.default_rng(5)
    width = 4 if continuous else 7
    v = g.uniform(-1, 1, (sims + 1, batch)).astype(np.float32)
    p = g.standard_normal((sims + 1, batch, width)).astype(np.float32)
    fn = lambda pa, a, c, r: RecurrentOutput(v[c[0]], v[c[0]] * 0.1, p[c[0]])  # noqa: E731
    root = RootInput(v[0], p[0], 0.99, continuous)
    cfg = SearchConfig(variant=variant, num_simulations=sims, num_sampled_actions=6, num_sampled_actions_widened=2)
    runs = []
    for _ in range(2):
        out = search(root, fn, cfg, np.random.default_rng(11), train=True)
        k = 6 if continuous else width
        bufs = get_buffers(batch, sims + 1, k, 2 if continuous else 0, sims + 1)
        runs.append((out, bufs.child_index.copy(), bufs.nodes_f.copy()))
    (a, ia, fa), (b, ib, fb) = runs
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(fa, fb)
    for name in ("action", "visit_counts", "policy", "root_value", "sve_value", "q_values"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    other = search(root, fn, cfg, np.random.default_rng(12), train=True)
    if continuous:  # another seed draws other candidates
        assert not np.array_equal(other.sampled_actions, a.sampled_actions)
    else:  # and, for discrete Gumbel, other root noise
        assert not np.array_equal(other.prior, a.prior) or not np.array_equal(other.visit_counts, a.visit_counts)


def test_considered_visits_schedule():
    # m = 4, n = 8: phases 2; phase 1 gives 4 x 1 visit, then 2 survivors get 2 more each
    assert considered_visits(4, 8).tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    assert considered_visits(1, 3).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="m >= 1"):
        considered_visits(0, 3)


def test_sve_and_classic_root_value():
    fn, root, _ = table_model(2, 11, 3, 0)
    out = search(root, fn, SearchConfig(num_simulations=10), np.random.default_rng(0), train=False)
    # classic value divides the same return sum by N + 1 (root visit count starts at 1)
    np.testing.assert_allclose(out.root_value * 11, out.sve_value * 10, rtol=1e-5)


@pytest.mark.parametrize("field,value,match", [
    ("variant", "mcts", "variant='mcts' is not allowed"),
    ("num_simulations", 0, "num_simulations=0 must be >= 1"),
    ("num_sampled_actions_widened", 40, "num_sampled_actions_widened=40"),
    ("root_exploration_fraction", 1.5, "root_exploration_fraction=1.5"),
    ("max_depth", -1, "max_depth=-1"),
])
def test_config_errors_name_the_value(field, value, match):
    fn, root, _ = table_model(1, 5, 3, 0)
    cfg = SearchConfig(num_simulations=4)
    setattr(cfg, field, value)
    with pytest.raises(ValueError, match=match):
        search(root, fn, cfg, np.random.default_rng(0), train=False)


def test_bad_inputs_raise():
    fn, root, _ = table_model(2, 5, 3, 0)
    cfg = SearchConfig(num_simulations=4)
    with pytest.raises(ValueError, match="policy must have shape"):
        search(RootInput(root.value, root.policy[:1], 0.99), fn, cfg, np.random.default_rng(0), train=False)
    with pytest.raises(ValueError, match="discount"):
        search(RootInput(root.value, root.policy, 1.5), fn, cfg, np.random.default_rng(0), train=False)
    bad = lambda pa, a, c, r: RecurrentOutput(np.zeros(3, np.float32), np.zeros(2), np.zeros((2, 3)))  # noqa
    with pytest.raises(ValueError, match="value of shape"):
        search(root, bad, cfg, np.random.default_rng(0), train=False)


def test_bench_json(capsys):
    from ezrobot.bench.search import main
    assert main(["--json", "--workloads", "W2,W3", "--repeats", "1", "--simulations", "6"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in records] == ["puct", "gumbel", "sampled_puct", "sampled_gumbel"]
    for r in records:
        assert set(r) >= {"workload", "variant", "batch", "simulations", "seconds_median", "sims_per_s",
                          "cpu_seconds_median", "cpu_sims_per_s"}
        assert r["sims_per_s"] == pytest.approx(r["batch"] * 6 / r["seconds_median"])


@pytest.mark.parametrize("variant", ["puct", "gumbel"])
def test_deferred_interior_actions_follow_the_node_policy(variant):
    # every node's head is x = 0: mu = 0 and sigma = softplus(1) + 0.1; children below interior nodes are
    # drawn lazily at expansion, so their pre-tanh actions must be N(0, sigma^2) and all distinct
    batch, sims, dims = 64, 30, 3
    head = np.zeros((batch, 2 * dims), np.float32)
    seen = []

    def fn(parents, actions, children, reset):
        interior = parents > 0
        seen.append(np.array(actions[interior], np.float64))
        value = np.linspace(-0.5, 0.5, batch).astype(np.float32)
        return RecurrentOutput(value, value * 0.1, head)

    root = RootInput(np.zeros(batch, np.float32), head, 0.99, True)
    cfg = SearchConfig(variant=variant, num_simulations=sims, num_sampled_actions=4,
                       num_sampled_actions_widened=0, num_sampled_actions_interior=3)
    search(root, fn, cfg, np.random.default_rng(0), train=False)
    pre_tanh = np.arctanh(np.concatenate(seen))
    sigma = np.log1p(np.exp(1.0)) + 0.1
    assert pre_tanh.shape[0] > 500
    assert abs(pre_tanh.mean()) < 0.1
    assert abs(pre_tanh.std() / sigma - 1.0) < 0.08
    assert np.unique(pre_tanh[:, 0]).size == pre_tanh.shape[0]


@pytest.mark.parametrize("variant", ["puct", "gumbel"])
@pytest.mark.parametrize("mean_first", [True, False])
def test_eval_root_candidates_start_with_the_mean_action(variant, mean_first):
    g = np.random.default_rng(3)
    head = g.standard_normal((4, 6)).astype(np.float32)  # B = 4, D = 3
    fn = lambda pa, a, c, r: RecurrentOutput(np.zeros(4, np.float32), np.zeros(4, np.float32), head)  # noqa: E731
    cfg = SearchConfig(variant=variant, num_simulations=8, num_sampled_actions=6, eval_mean_action=mean_first)
    root = RootInput(np.zeros(4, np.float32), head, 0.99, True)
    mean = np.tanh(5.0 * np.tanh(head[:, :3].astype(np.float64) / 5.0))
    out = search(root, fn, cfg, np.random.default_rng(0), train=False)
    assert np.allclose(out.sampled_actions[:, 0], mean, atol=1e-6) == mean_first
    train_out = search(root, fn, cfg, np.random.default_rng(0), train=True)
    assert not np.allclose(train_out.sampled_actions[:, 0], mean, atol=1e-6)  # training samples all K


@pytest.mark.parametrize("noise", [False, True])
def test_sampled_gumbel_training_keeps_the_best_q_sample_without_noise(noise):
    # depth-1 trees: Q(a_k) = gamma * v(a_k) exactly, with v peaked at a = 0.3 in every dimension; without
    # root Gumbel noise sequential halving must keep the best-Q sample of every row, with noise often not
    batch, dims = 64, 3

    def fn(parents, actions, children, reset):
        a = np.asarray(actions, np.float64)
        value = (-((a - 0.3) ** 2).sum(-1)).astype(np.float32)
        return RecurrentOutput(value, np.zeros(batch, np.float32), np.zeros((batch, 2 * dims), np.float32))

    root = RootInput(np.zeros(batch, np.float32), np.zeros((batch, 2 * dims), np.float32), 0.99, True)
    cfg = SearchConfig(variant="gumbel", num_simulations=32, num_sampled_actions=16, max_depth=1,
                       sampled_gumbel_noise=noise)
    out = search(root, fn, cfg, np.random.default_rng(0), train=True)
    best = (-((out.sampled_actions.astype(np.float64) - 0.3) ** 2).sum(-1)).argmax(-1)
    agree = float((out.action_index == best).mean())
    assert agree < 0.8 if noise else agree == 1.0
