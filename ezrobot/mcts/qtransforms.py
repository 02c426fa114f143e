"""Q values of children, per-tree min-max normalisation and the Gumbel completed-Q transform (numba).

* Q(s, a) = r(s, a) + discount * V(child), where r is the child's value prefix minus the parent's (or the
  child's value prefix alone when the parent is a reset node) and V = value sum / visits.
* Min-max normalisation (EfficientZero): (q - min) / max(max - min, floor), clipped to [0, 1]; while the
  tree has no Q yet the value is only clipped.
* Completed Q (Gumbel MuZero): q(a) where N(a) > 0, else
  v_mix = (v + sum_b N(b) * sum_{N(a)>0} pi(a) q(a) / sum_{N(a)>0} pi(a)) / (1 + sum_b N(b)),
  then sigma(q) = (c_visit + max_b N(b)) * c_scale * normalised q.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ezrobot.mcts.tree import NCHILD, PRIOR, QMAX, QMIN, RAW, REWARD, VISITS, VSUM

TINY = 1.1754943508222875e-38
"""Smallest prior probability used in the v_mix weights (float32 tiny, as in mctx)."""


@njit(cache=True, inline="always")
def normalize(q, qmin, qmax, floor):
    """Min-max normalise ``q`` with the range floor and clip it to [0, 1]."""
    if qmax >= qmin:
        span = qmax - qmin
        if span < floor:
            span = floor
        q = (q - qmin) / span
    if q < 0.0:
        return 0.0
    if q > 1.0:
        return 1.0
    return q


@njit(cache=True, inline="always")
def child_q(nodes_f, nodes_i, b, child, discount):
    """Q of a visited child node: its reward plus the discounted mean of its backed-up values."""
    return nodes_f[b, child, REWARD] + discount * (nodes_f[b, child, VSUM] / nodes_i[b, child, VISITS])


@njit(cache=True, inline="always")
def visited_q(nodes_f, nodes_i, child_index, b, node, discount, out_q, out_visits):
    """Visits of every child of ``node`` into ``out_visits [C]`` and the Q of the visited ones into
    ``out_q [C]`` (unvisited entries are left as they are).

    Returns:
        (sum of the visited children's Q, number of visited children).
    """
    total = 0.0
    count = 0
    for a in range(nodes_i[b, node, NCHILD]):
        child = child_index[b, node, a]
        n = 0
        if child >= 0:
            n = nodes_i[b, child, VISITS]
        out_visits[a] = n
        if n > 0:
            q = child_q(nodes_f, nodes_i, b, child, discount)
            out_q[a] = q
            total += q
            count += 1
    return total, count


@njit(cache=True, inline="always")
def mean_q(total, count, is_root, parent_q):
    """EfficientZero's value for unvisited children from :func:`visited_q`'s sums: the mean Q of the
    visited ones, with the parent's own mean Q counted in as one more term below the root."""
    if is_root and count > 0:
        return total / count
    return (parent_q + total) / (count + 1)


@njit(cache=True, inline="always")
def child_stats(nodes_f, nodes_i, child_index, child_f, b, node, discount, out_q, out_visits):
    """Visits of every child of ``node`` into ``out_visits [C]``, Q of the visited ones into ``out_q [C]``.

    Returns:
        (sum of child visits, max child visits, v_mix): the completed Q of a child is ``out_q[a]`` where it
        was visited, else v_mix.
    """
    num = nodes_i[b, node, NCHILD]
    visit_sum = 0
    visit_max = 0
    prob_sum = 0.0
    weighted = 0.0
    for a in range(num):
        child = child_index[b, node, a]
        n = 0
        if child >= 0:
            n = nodes_i[b, child, VISITS]
        out_visits[a] = n
        if n > 0:
            q = child_q(nodes_f, nodes_i, b, child, discount)
            out_q[a] = q
            p = child_f[b, node, a, PRIOR]
            if p < TINY:
                p = TINY
            prob_sum += p
            weighted += p * q
            visit_sum += n
            if n > visit_max:
                visit_max = n
    v_mix = nodes_f[b, node, RAW]
    if visit_sum > 0:
        v_mix = (v_mix + visit_sum * (weighted / prob_sum)) / (1.0 + visit_sum)
    return visit_sum, visit_max, v_mix


@njit(cache=True, inline="always")
def completed_q(nodes_f, nodes_i, child_index, child_f, b, node, discount, out_q, out_visits):
    """Completed Q of every child of ``node`` (unnormalised) into ``out_q [C]``, visits into
    ``out_visits [C]``.

    Returns:
        (sum of child visits, max child visits).
    """
    visit_sum, visit_max, v_mix = child_stats(nodes_f, nodes_i, child_index, child_f, b, node, discount, out_q,
                                              out_visits)
    for a in range(nodes_i[b, node, NCHILD]):
        if out_visits[a] == 0:
            out_q[a] = v_mix
    return visit_sum, visit_max


@njit(cache=True, inline="always")
def q_range(rows_f, b, q, visits, num, v_mix, per_node):
    """The (min, max) that normalises the Q values of a node's children: the whole tree's range
    (EfficientZero), or with ``per_node`` the range of this node's completed Q values (Gumbel MuZero /
    mctx): the visited children's ``q [C]`` and, when a child is unvisited, ``v_mix``."""
    if not per_node:
        return rows_f[b, QMIN], rows_f[b, QMAX]
    lo = np.inf
    hi = -np.inf
    unvisited = False
    for a in range(num):
        if visits[a] > 0:
            if q[a] < lo:
                lo = q[a]
            if q[a] > hi:
                hi = q[a]
        else:
            unvisited = True
    if unvisited:
        if v_mix < lo:
            lo = v_mix
        if v_mix > hi:
            hi = v_mix
    return lo, hi


@njit(cache=True, inline="always")
def sigma_q(nodes_f, nodes_i, child_index, child_f, rows_f, b, node, discount, floor, per_node, c_visit, c_scale,
            out_q, out_visits):
    """sigma(normalised completed Q) of every child of ``node`` into ``out_q [C]`` (``per_node``: see
    :func:`q_range`).

    Returns:
        (sum of child visits, max child visits).
    """
    visit_sum, visit_max, v_mix = child_stats(nodes_f, nodes_i, child_index, child_f, b, node, discount, out_q,
                                              out_visits)
    num = nodes_i[b, node, NCHILD]
    qmin, qmax = q_range(rows_f, b, out_q, out_visits, num, v_mix, per_node)
    for a in range(num):
        if out_visits[a] == 0:
            out_q[a] = v_mix
    scale = (c_visit + visit_max) * c_scale
    for a in range(nodes_i[b, node, NCHILD]):
        out_q[a] = scale * normalize(out_q[a], qmin, qmax, floor)
    return visit_sum, visit_max
