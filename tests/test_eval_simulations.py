"""``eval.num_simulations``: the evaluation search's budget, separate from training's; evaluation with another
budget leaves training as it was (the evaluation search has its own generator)."""
import numpy as np
import pytest
import torch

from ezrobot.agent import SearchAgent
from ezrobot.evaluate import Evaluator
from ezrobot.factory import build_parts
from ezrobot.hydra_config import load_config


@pytest.mark.parametrize("setting, expected", [(0, 4), (9, 9)])
def test_evaluation_searches_with_eval_num_simulations(monkeypatch, setting, expected):
    cfg = load_config(["experiment=cartpole", "search.num_simulations=4", f"eval.num_simulations={setting}",
                       "env.max_episode_steps=5", "threads=1"])
    parts = build_parts(cfg)
    seen = []
    original = SearchAgent.search

    def spy(self, model, obs, rng, *, train, temperature=1.0, num_simulations=None):
        seen.append((train, num_simulations or self.cfg.num_simulations))
        return original(self, model, obs, rng, train=train, temperature=temperature,
                        num_simulations=num_simulations)

    monkeypatch.setattr(SearchAgent, "search", spy)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    np_before = np.random.get_state()[1].copy()
    stats = Evaluator(cfg, parts.spec, parts.agent).episodes(parts.model, 2, seed=3)
    assert seen and all(s == (False, expected) for s in seen)
    assert stats["eval_return_mean"] > 0
    # the evaluation draws from no global generator that training uses
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(np.random.get_state()[1], np_before)
