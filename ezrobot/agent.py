"""Glue between a world model and the tree search: root inputs from the initial inference, and a
``recurrent_fn`` over a latent slot pool that stays on the model's device."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ezrobot.mcts import search as run_search
from ezrobot.mcts.config import SearchConfig
from ezrobot.mcts.slots import LatentPool, make_recurrent_fn
from ezrobot.mcts.types import RootInput, SearchOutput
from ezrobot.selfplay import ActOutput


class SearchAgent:
    """Runs one batched search for a batch of observations with a given model.

    Args:
        cfg: Search settings (``use_value_prefix`` must match the model).
        continuous: Whether the action space is continuous.
        discount: Discount per agent step.
        device: Device of the models it will be used with.
    """

    def __init__(self, cfg: SearchConfig, continuous: bool, discount: float, device: torch.device):
        self.cfg = cfg
        self.continuous = continuous
        self.discount = discount
        self.device = device
        self.pool = LatentPool()

    @torch.no_grad()
    def search(self, model: torch.nn.Module, obs, rng: np.random.Generator, *, train: bool,
               temperature: float = 1.0, num_simulations: Optional[int] = None) -> SearchOutput:
        """Search from observations ``obs [B, *O]`` (numpy or tensor) with ``model`` in eval mode.

        Returns:
            The engine's :class:`SearchOutput` (numpy arrays).
        """
        obs_t = torch.as_tensor(obs).to(self.device, non_blocking=True)
        latent, value_logits, policy = model.initial_inference(obs_t)
        value = model.value_support.logits_to_scalar(value_logits)
        root = RootInput(value=value.float().cpu().numpy(), policy=policy.float().cpu().numpy(),
                         discount=self.discount, continuous=self.continuous)
        cfg = self.cfg
        if num_simulations is not None and num_simulations != cfg.num_simulations:
            import dataclasses
            cfg = dataclasses.replace(cfg, num_simulations=num_simulations)
        lstm = model.initial_lstm_state(latent.shape[0], self.device)
        self.pool.allocate(latent.shape[0], cfg.num_simulations + 1, tuple(latent.shape[1:]),
                           None if lstm is None else lstm[0].shape[-1], self.device, latent.dtype)
        self.pool.set_root(latent, lstm)

        def step_fn(parent_latent, lstm, actions):
            nxt, prefix_logits, nxt_lstm, v_logits, pol = model.recurrent_inference(parent_latent, actions, lstm)
            return (nxt, nxt_lstm, model.value_support.logits_to_scalar(v_logits),
                    model.reward_support.logits_to_scalar(prefix_logits), pol)

        recurrent_fn = make_recurrent_fn(self.pool, step_fn, continuous=self.continuous)
        return run_search(root, recurrent_fn, cfg, rng, train=train, temperature=temperature)

    def act_fn(self, model: torch.nn.Module, rng: np.random.Generator, *, train: bool, temperature: float = 1.0):
        """An ``obs -> ActOutput`` callable for self-play (``train=True``) or evaluation."""

        def act(obs: np.ndarray) -> ActOutput:
            out = self.search(model, obs, rng, train=train, temperature=temperature)
            return ActOutput(actions=out.action, policy=out.policy, root_value=out.root_value,
                             sampled_actions=out.sampled_actions)

        return act
