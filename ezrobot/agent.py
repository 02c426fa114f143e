"""Glue between a world model and the tree search.

The search call path: :meth:`SearchAgent.search` runs the model's initial inference, writes the root
latents into a :class:`~ezrobot.mcts.slots.LatentPool` and calls :func:`ezrobot.mcts.search` with a
:class:`~ezrobot.mcts.slots.RecurrentModel` (the engine's ``recurrent_fn``) whose step is a
:class:`ModelStep` of the same model. :class:`Actor` wraps a search as the ``obs -> ActOutput`` policy of
self-play and evaluation.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np
import torch

from ezrobot.mcts import search
from ezrobot.mcts.config import SearchConfig
from ezrobot.mcts.slots import LatentPool, LstmState, RecurrentModel
from ezrobot.mcts.types import RootInput, SearchOutput
from ezrobot.types import ActOutput


class ModelStep:
    """One batched dynamics step of a world model with its scalars decoded (the pool's ``step_fn``).

    Args:
        model: An :class:`~ezrobot.nets.EfficientZeroNet` (or any model with ``recurrent_inference`` and
            ``value_support`` / ``reward_support``).
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def __call__(self, parent_latent: torch.Tensor, lstm: LstmState, actions: torch.Tensor
                 ) -> Tuple[torch.Tensor, LstmState, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(next_latent, next_lstm, value [B], value_prefix [B], policy [B, P])``."""
        model = self.model
        nxt, prefix_logits, nxt_lstm, v_logits, pol = model.recurrent_inference(parent_latent, actions, lstm)
        return (nxt, nxt_lstm, model.value_support.logits_to_scalar(v_logits),
                model.reward_support.logits_to_scalar(prefix_logits), pol)


class SearchAgent:
    """Runs one batched search for a batch of observations with a given model.

    Args:
        cfg: Search settings.
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
                         discount=self.discount, continuous=self.continuous,
                         use_value_prefix=bool(model.use_value_prefix))
        cfg = self.cfg
        if num_simulations is not None and num_simulations != cfg.num_simulations:
            cfg = dataclasses.replace(cfg, num_simulations=num_simulations)
        lstm = model.initial_lstm_state(latent.shape[0], self.device)
        self.pool.allocate(latent.shape[0], cfg.num_simulations + 1, tuple(latent.shape[1:]),
                           None if lstm is None else lstm[0].shape[-1], self.device, latent.dtype)
        self.pool.set_root(latent, lstm)
        recurrent = RecurrentModel(self.pool, ModelStep(model), continuous=self.continuous)
        return search(root, recurrent, cfg, rng, train=train, temperature=temperature)

    def actor(self, model: torch.nn.Module, rng: np.random.Generator, *, train: bool,
              temperature: float = 1.0, num_simulations: Optional[int] = None) -> "Actor":
        """An ``obs -> ActOutput`` policy for self-play (``train=True``) or evaluation."""
        return Actor(self, model, rng, train=train, temperature=temperature, num_simulations=num_simulations)


class Actor:
    """A searched policy: ``actor(obs [E, *O]) -> ActOutput``, one batched search per call.

    Args:
        agent: The search agent.
        model: The network searched with.
        rng: Generator of the search's noise.
        train: Training search (root noise, sampled actions) or deterministic evaluation search.
        temperature: Self-play visit temperature.
        num_simulations: Simulations per search (None: the search settings').
    """

    def __init__(self, agent: SearchAgent, model: torch.nn.Module, rng: np.random.Generator, *, train: bool,
                 temperature: float = 1.0, num_simulations: Optional[int] = None):
        self.agent, self.model, self.rng = agent, model, rng
        self.train, self.temperature, self.num_simulations = train, temperature, num_simulations

    def __call__(self, obs: np.ndarray) -> ActOutput:
        """Actions and search statistics for a batch of observations."""
        out = self.agent.search(self.model, obs, self.rng, train=self.train, temperature=self.temperature,
                                num_simulations=self.num_simulations)
        return ActOutput(actions=out.action, policy=out.policy, root_value=out.root_value,
                         sampled_actions=out.sampled_actions)
