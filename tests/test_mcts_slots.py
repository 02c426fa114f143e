"""Latent pool and recurrent_fn adapter: gathers parents, writes children, zeros LSTM state on reset."""
import numpy as np
import pytest
import torch

from ezrobot.mcts import RootInput, SearchConfig, search
from ezrobot.mcts.slots import LatentPool, RecurrentModel


def make_step(action_dim, continuous, calls):
    def step_fn(latent, lstm, actions):
        calls.append(1)
        a = actions.float().reshape(latent.shape[0], -1)[:, :1]
        nxt = latent + 1.0 + a
        h, c = lstm
        new = (h + 1.0, c + 2.0)
        value = latent.mean(1)
        return nxt, new, value, 0.1 * value, torch.zeros(latent.shape[0], 2 * action_dim if continuous else 3)
    return step_fn


@pytest.mark.parametrize("continuous", [False, True])
def test_pool_gathers_and_writes_slots(continuous):
    batch, sims, horizon = 3, 9, 3
    pool = LatentPool()
    pool.allocate(batch, sims + 1, (4,), 2, "cpu")
    first = pool.latents
    pool.allocate(batch, sims + 1, (4,), 2, "cpu")
    assert pool.latents is first  # reused, not reallocated
    pool.set_root(torch.arange(batch, dtype=torch.float32)[:, None].repeat(1, 4))
    calls = []
    fn = RecurrentModel(pool, make_step(2, continuous, calls), continuous=continuous)
    seen = []

    def recording(parents, actions, children, reset):
        seen.append((parents.copy(), np.array(actions, copy=True), children.copy(), reset.copy()))
        return fn(parents, actions, children, reset)

    policy = np.zeros((batch, 4 if continuous else 3), np.float32)
    root = RootInput(np.zeros(batch, np.float32), policy, 0.99, continuous)
    cfg = SearchConfig(num_simulations=sims, value_prefix_horizon=horizon, num_sampled_actions=4,
                       num_sampled_actions_widened=0)
    search(root, recording, cfg, np.random.default_rng(0), train=False)
    assert len(calls) == sims
    for parents, actions, children, reset in seen:
        rows = np.arange(batch)
        a = actions.reshape(batch, -1)[:, 0].astype(np.float32)
        want = pool.latents[rows, parents].numpy() + 1.0 + a[:, None]
        np.testing.assert_allclose(pool.latents[rows, children].numpy(), want, rtol=1e-6)
        h_child = pool.h[rows, children].numpy()
        expect_h = np.where(reset[:, None], 0.0, pool.h[rows, parents].numpy() + 1.0)
        np.testing.assert_allclose(h_child, expect_h)
    assert any(r.any() for *_, r in seen)  # depth-3 children were reset


def test_pool_errors():
    pool = LatentPool()
    with pytest.raises(RuntimeError, match="before allocate"):
        pool.set_root(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="num_slots"):
        pool.allocate(2, 1, (3,), None, "cpu")
    pool.allocate(2, 4, (3,), None, "cpu")
    with pytest.raises(ValueError, match="does not match"):
        pool.set_root(torch.zeros(2, 5))
