"""Child selection rules (numba): EfficientZero pUCT with seeded tie-breaking, Gumbel root and interior.

pUCT score (EfficientZero): with T = N(s) - 1 the visits of the children,
  U(s, a) = (log((T + c2 + 1) / c2) + c1) * sqrt(T) / (N(a) + 1) * P(a) + norm(Q(s, a)),
where unvisited children take the parent's mean Q. Scores within 1e-6 of the running maximum tie (the
original's list semantics); a tie is broken by a splitmix64 hash of (seed, tree, simulation, depth), so the
same seed gives the same tree (the original uses C's unseeded ``rand()``).

Gumbel root: among children whose visit count equals the sequential-halving schedule's current count, the
argmax of g(a) + logit(a) + sigma(q(a)). Interior: argmax of pi'(a) - N(a) / (1 + sum_b N(b)) with
pi' = softmax(logit + sigma(q)); the first maximum wins (deterministic).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ezrobot.mcts.qtransforms import child_stats, mean_q, normalize, q_range, sigma_q, visited_q
from ezrobot.mcts.tree import LOGIT, NCHILD, PRIOR, QMAX, QMIN, VISITS

TIE_EPSILON = 1e-6
"""Scores this close to the running maximum count as ties (EfficientZero)."""
LOW_LOGIT = -1e9
"""Floor of the Gumbel root scores (mctx)."""


@njit(cache=True, inline="always")
def splitmix64(x):
    """One splitmix64 finalisation of the uint64 ``x``."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, inline="always")
def tie_index(seed, b, sim, depth, count):
    """Deterministic index in [0, count) for a tie at (tree b, simulation sim, depth)."""
    key = (np.uint64(seed) + (np.uint64(b) << np.uint64(32)) + (np.uint64(sim) << np.uint64(12))
           + np.uint64(depth))
    return np.int64(splitmix64(key) % np.uint64(count))


@njit(cache=True, inline="always")
def select_puct(nodes_f, nodes_i, child_index, child_f, rows_f, b, node, is_root, parent_q, discount, pb_c_base,
                pb_c_init, floor, seed, sim, depth, visits, ties, q):
    """EfficientZero pUCT choice among the children of ``node`` (scratch rows ``visits``, ``ties`` int32
    ``[C]`` and ``q`` float64 ``[C]``, passed in so that no array view is made per call).

    Returns:
        (chosen child index, the node's mean Q: the value of its unvisited children, see ``mean_q``).
    """
    total_q, count = visited_q(nodes_f, nodes_i, child_index, b, node, discount, q, visits)
    parent_mean_q = mean_q(total_q, count, is_root, parent_q)
    total = np.float64(nodes_i[b, node, VISITS] - 1)
    pb_c = np.log((total + pb_c_base + 1.0) / pb_c_base) + pb_c_init
    sqrt_total = np.sqrt(total)
    qmin = rows_f[b, QMIN]
    qmax = rows_f[b, QMAX]
    unvisited = normalize(parent_mean_q, qmin, qmax, floor)
    max_score = -np.inf
    count = 0
    for a in range(nodes_i[b, node, NCHILD]):
        n = visits[a]
        prior_score = pb_c * (sqrt_total / (n + 1)) * child_f[b, node, a, PRIOR]
        if n == 0:
            score = prior_score + unvisited
        else:
            score = prior_score + normalize(q[a], qmin, qmax, floor)
        if max_score < score:
            max_score = score
            ties[0] = a
            count = 1
        elif score >= max_score - TIE_EPSILON:
            ties[count] = a
            count += 1
    if count == 1:
        return np.int64(ties[0]), parent_mean_q
    return np.int64(ties[tie_index(seed, b, sim, depth, count)]), parent_mean_q


@njit(cache=True, inline="always")
def gumbel_scores(nodes_f, nodes_i, child_index, child_f, rows_f, gumbel, b, considered, discount, floor,
                  per_node, c_visit, c_scale, sig, visits, out):
    """Root scores g + logit + sigma(q) for children with ``considered`` visits, -inf elsewhere."""
    sigma_q(nodes_f, nodes_i, child_index, child_f, rows_f, b, 0, discount, floor, per_node, c_visit, c_scale, sig,
            visits)
    for a in range(nodes_i[b, 0, NCHILD]):
        if visits[a] == considered:
            s = gumbel[b, a] + child_f[b, 0, a, LOGIT] + sig[a]
            out[a] = s if s > LOW_LOGIT else LOW_LOGIT
        else:
            out[a] = -np.inf


@njit(cache=True, inline="always")
def select_gumbel_root(nodes_f, nodes_i, child_index, child_f, rows_f, gumbel, b, considered, discount, floor,
                       per_node, c_visit, c_scale, visits, q):
    """Sequential-halving root choice (scratch rows ``visits [C]`` int32, ``q [C]`` float64): the first
    maximum of :func:`gumbel_scores`, computing sigma(q) only for the eligible children."""
    _, visit_max, v_mix = child_stats(nodes_f, nodes_i, child_index, child_f, b, 0, discount, q, visits)
    scale = (c_visit + visit_max) * c_scale
    qmin, qmax = q_range(rows_f, b, q, visits, nodes_i[b, 0, NCHILD], v_mix, per_node)
    sig_mix = scale * normalize(v_mix, qmin, qmax, floor)
    best = 0
    best_score = -np.inf
    for a in range(nodes_i[b, 0, NCHILD]):
        if visits[a] == considered:
            sig = sig_mix if considered == 0 else scale * normalize(q[a], qmin, qmax, floor)
            s = gumbel[b, a] + child_f[b, 0, a, LOGIT] + sig
            if not s > LOW_LOGIT:
                s = LOW_LOGIT
            if s > best_score:
                best_score = s
                best = a
    return np.int64(best)


@njit(cache=True, inline="always")
def improved_policy(nodes_f, nodes_i, child_index, child_f, rows_f, b, node, discount, floor, per_node, c_visit,
                    c_scale, visits, sig, out):
    """pi' = softmax(logit + sigma(completed Q)) of ``node``'s children into ``out [C]``.

    Returns:
        The sum of the children's visits.
    """
    visit_sum, _ = sigma_q(nodes_f, nodes_i, child_index, child_f, rows_f, b, node, discount, floor, per_node,
                           c_visit, c_scale, sig, visits)
    num = nodes_i[b, node, NCHILD]
    top = -np.inf
    for a in range(num):
        out[a] = child_f[b, node, a, LOGIT] + sig[a]
        if out[a] > top:
            top = out[a]
    total = 0.0
    for a in range(num):
        out[a] = np.exp(out[a] - top)
        total += out[a]
    for a in range(num):
        out[a] = out[a] / total
    return visit_sum


@njit(cache=True, inline="always")
def select_gumbel_interior(nodes_f, nodes_i, child_index, child_f, rows_f, b, node, discount, floor, per_node,
                           c_visit, c_scale, visits, q, x):
    """Deterministic interior choice: the first maximum of pi'(a) - N(a) / (1 + sum_b N(b)).

    pi'(a) = softmax(logit(a) + sigma(a)) is computed as prior(a) exp(sigma(a) - s_max) / Z (the log prior
    is the max-shifted log-softmax of the logits, so this is the same distribution): every unvisited child
    shares sigma(v_mix), so one exp serves all of them and only visited children need their own.
    """
    visit_sum, visit_max, v_mix = child_stats(nodes_f, nodes_i, child_index, child_f, b, node, discount, q, visits)
    scale = (c_visit + visit_max) * c_scale
    qmin, qmax = q_range(rows_f, b, q, visits, nodes_i[b, node, NCHILD], v_mix, per_node)
    sig_mix = scale * normalize(v_mix, qmin, qmax, floor)
    num = nodes_i[b, node, NCHILD]
    top = sig_mix
    for a in range(num):
        if visits[a] > 0:
            x[a] = scale * normalize(q[a], qmin, qmax, floor)
            if x[a] > top:
                top = x[a]
    e_mix = np.exp(sig_mix - top)
    total = 0.0
    for a in range(num):
        if visits[a] == 0:
            x[a] = child_f[b, node, a, PRIOR] * e_mix
        else:
            x[a] = child_f[b, node, a, PRIOR] * np.exp(x[a] - top)
        total += x[a]
    best = 0
    best_score = -np.inf
    for a in range(num):
        score = x[a] / total - visits[a] / (1.0 + visit_sum)
        if score > best_score:
            best_score = score
            best = a
    return np.int64(best)
