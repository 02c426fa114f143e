"""Batched numba tree search for EfficientZero-family agents (pUCT, Sampled MuZero, Gumbel, EZ-V2 sampled).

Entry points: :func:`search` (dispatcher) and one function per variant; :class:`SearchConfig`;
:class:`RootInput`, :class:`RecurrentOutput`, :class:`SearchOutput`; :class:`LatentPool` and
:class:`RecurrentModel` (torch latent slots on the model's device) in :mod:`ezrobot.mcts.slots`.
"""
from ezrobot.mcts.config import SearchConfig
from ezrobot.mcts.policies import (gumbel_search, puct_search, sampled_gumbel_search, sampled_puct_search,
                                   search)
from ezrobot.mcts.types import RecurrentOutput, RootInput, SearchOutput

__all__ = ["SearchConfig", "RootInput", "RecurrentOutput", "SearchOutput", "search", "puct_search",
           "sampled_puct_search", "gumbel_search", "sampled_gumbel_search"]
