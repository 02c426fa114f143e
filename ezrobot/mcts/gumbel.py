"""Gumbel MuZero root schedule: Gumbel top-m with sequential halving as a table of considered visits.

Simulation s at the root may only pick a child whose visit count equals ``table[s]``: with m actions and
ceil(log2 m) phases, each phase gives every remaining action max(1, floor(n / (ceil(log2 m) * m_phase)))
visits before the number of remaining actions halves (never below 2). Ranking by g + logit + sigma(q)
among the eligible children then realises top-m selection (phase 0 picks the m best unvisited children by
g + logit) and the halving (only survivors have the right count). The final action is the best child among
those with the most visits.
"""
from __future__ import annotations

import functools
import math

import numpy as np


@functools.lru_cache(maxsize=64)
def considered_visits(num_considered: int, num_simulations: int) -> np.ndarray:
    """The sequential-halving schedule.

    Args:
        num_considered: m, the number of root actions kept (>= 1).
        num_simulations: n.

    Returns:
        ``[n]`` int32 read-only table: the visit count a child must have to be eligible at simulation s.

    Raises:
        ValueError: if m < 1 or n < 1.
    """
    if num_considered < 1 or num_simulations < 1:
        raise ValueError(f"considered_visits needs m >= 1 and n >= 1, got m={num_considered}, "
                         f"n={num_simulations}")
    if num_considered == 1:
        table = np.arange(num_simulations, dtype=np.int32)
    else:
        phases = math.ceil(math.log2(num_considered))
        seq = []
        visits = [0] * num_considered
        remaining = num_considered
        while len(seq) < num_simulations:
            extra = max(1, num_simulations // (phases * remaining))
            for _ in range(extra):
                seq.extend(visits[:remaining])
                for i in range(remaining):
                    visits[i] += 1
            remaining = max(2, remaining // 2)
        table = np.asarray(seq[:num_simulations], dtype=np.int32)
    table.setflags(write=False)
    return table
