"""Preallocated batched tree arrays and the numba kernels that expand nodes and back values up.

Layout (B trees, M = N + 1 nodes, C children per node, D action dimension); node index = latent slot:

* ``nodes_f [B, M, 4]`` float64: value sum, value prefix, reward into the node, network value.
* ``nodes_i [B, M, 5]`` int32: visits, reset flag, depth, number of children (0: not expanded), parent.
* ``child_index [B, M, C]`` int32: node index of each child, -1 while unexpanded.
* ``child_f [B, M, C, 2]`` float64: prior probability and log prior of each child.
* ``child_action [B, M, C, D]`` float32: continuous actions of the children (D = 0 for discrete spaces);
  ``node_dist [B, M, 2, D]`` float64: the Gaussian mean and std of every continuous interior node.
* ``rows_f [B, 2]`` float64: the tree's min and max Q; ``rows_i [B, 4]`` int32: path length, terminal
  flag, sum and max of leaf depths; ``path [B, depth_bound + 1]`` int32: the current search path.

Arrays are cached per shape and reused by later searches; nodes are (re)initialised lazily when created,
so nothing is cleared or allocated on the hot path. Everything is float64 so that the plain-Python
reference in tests/ reproduces the engine bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
from numba import njit

# nodes_f fields
VSUM, VPREFIX, REWARD, RAW = 0, 1, 2, 3
# nodes_i fields
VISITS, RESET, DEPTH, NCHILD, PARENT = 0, 1, 2, 3, 4
# child_f fields
PRIOR, LOGIT = 0, 1
# rows_f / rows_i fields
QMIN, QMAX = 0, 1
PATH_LEN, TERMINAL, DEPTH_SUM, DEPTH_MAX = 0, 1, 2, 3


HEADER = 6
"""Length of the shape header ``(B, M, C, D, P, N)`` at the start of the int64 pool."""
NUM_PI = 7
"""Integer search parameters stored after the header (see ``engine.P_*``)."""
NUM_PF = 7
"""Float search parameters (see ``engine.F_*``)."""


@dataclass
class TreeBuffers:
    """The arrays of B trees (see the module docstring for shapes) and the per-search inputs and outputs of
    the simulation kernel, all views into four flat pools (float64, int32, int64, float32) plus the reset
    flags, so that one kernel call unboxes 11 arguments instead of 26.

    Per-search views: ``gumbel [B, C]`` f64 root noise, ``pf [6]`` f64 and ``pi [7]`` i64 parameters,
    ``table [N]`` i32 considered visits, ``eps [B, D]`` f32 action noise; outputs of each selection:
    ``out_parent [B]`` i64, ``out_act_i [B]`` i64, ``out_act_f [B, D]`` f32, ``out_reset [B]`` bool.
    """

    pools: tuple
    out_reset: np.ndarray
    nodes_f: np.ndarray
    nodes_i: np.ndarray
    child_index: np.ndarray
    child_f: np.ndarray
    child_action: np.ndarray
    node_dist: np.ndarray
    rows_f: np.ndarray
    rows_i: np.ndarray
    path: np.ndarray
    gumbel: np.ndarray
    table: np.ndarray
    pf: np.ndarray
    pi: np.ndarray
    scratch_i: np.ndarray
    scratch_f: np.ndarray
    out_parent: np.ndarray
    out_act_i: np.ndarray
    out_act_f: np.ndarray
    eps: np.ndarray


def _pool_sizes(b: int, m: int, c: int, d: int, p: int, n: int) -> Tuple[int, int, int, int]:
    """Lengths of the float64, int32, int64 and float32 pools (the order of :func:`unpack`)."""
    f64 = b * m * 4 + b * m * c * 2 + b * m * 2 * d + b * 2 + 4 * c + b * c + NUM_PF
    i32 = b * m * 5 + b * m * c + b * 4 + b * p + 2 * c + n
    i64 = HEADER + NUM_PI + 2 * b
    f32 = b * m * c * d + 2 * b * d
    return f64, i32, i64, f32


@njit(cache=True, inline="always")
def unpack(f64, i32, i64, f32):
    """Views of the pools (shapes from the int64 header); returns them in ``TreeBuffers`` field order from
    ``nodes_f`` on, then the four pool lengths used (checked against the allocation)."""
    b, m, c, d, p, n = i64[0], i64[1], i64[2], i64[3], i64[4], i64[5]
    o = 0
    nodes_f = f64[o:o + b * m * 4].reshape((b, m, 4))
    o += b * m * 4
    child_f = f64[o:o + b * m * c * 2].reshape((b, m, c, 2))
    o += b * m * c * 2
    node_dist = f64[o:o + b * m * 2 * d].reshape((b, m, 2, d))
    o += b * m * 2 * d
    rows_f = f64[o:o + b * 2].reshape((b, 2))
    o += b * 2
    scratch_f = f64[o:o + 4 * c].reshape((4, c))
    o += 4 * c
    gumbel = f64[o:o + b * c].reshape((b, c))
    o += b * c
    pf = f64[o:o + NUM_PF]
    o += NUM_PF
    j = 0
    nodes_i = i32[j:j + b * m * 5].reshape((b, m, 5))
    j += b * m * 5
    child_index = i32[j:j + b * m * c].reshape((b, m, c))
    j += b * m * c
    rows_i = i32[j:j + b * 4].reshape((b, 4))
    j += b * 4
    path = i32[j:j + b * p].reshape((b, p))
    j += b * p
    scratch_i = i32[j:j + 2 * c].reshape((2, c))
    j += 2 * c
    table = i32[j:j + n]
    j += n
    pi = i64[HEADER:HEADER + NUM_PI]
    out_parent = i64[HEADER + NUM_PI:HEADER + NUM_PI + b]
    out_act_i = i64[HEADER + NUM_PI + b:HEADER + NUM_PI + 2 * b]
    child_action = f32[0:b * m * c * d].reshape((b, m, c, d))
    k = b * m * c * d
    out_act_f = f32[k:k + b * d].reshape((b, d))
    eps = f32[k + b * d:k + 2 * b * d].reshape((b, d))
    return ((nodes_f, nodes_i, child_index, child_f, child_action, node_dist, rows_f, rows_i, path, gumbel,
             table, pf, pi, scratch_i, scratch_f, out_parent, out_act_i, out_act_f, eps),
            (o, j, HEADER + NUM_PI + 2 * b, k + 2 * b * d))


_CACHE: Dict[Tuple[int, int, int, int, int], TreeBuffers] = {}


def get_buffers(batch: int, num_nodes: int, num_children: int, action_dim: int, path_len: int) -> TreeBuffers:
    """Tree arrays for this shape, allocated on first use and reused afterwards.

    Args:
        batch: B.
        num_nodes: M = num_simulations + 1.
        num_children: C, the widest node.
        action_dim: D (0 for discrete spaces).
        path_len: Longest search path in nodes (depth bound + 1).
    """
    key = (batch, num_nodes, num_children, action_dim, path_len)
    buf = _CACHE.get(key)
    if buf is None:
        shape = (batch, num_nodes, num_children, action_dim, path_len, num_nodes - 1)
        sizes = _pool_sizes(*shape)
        pools = tuple(np.zeros(size, dtype) for size, dtype in zip(sizes, (np.float64, np.int32, np.int64,
                                                                            np.float32)))
        pools[2][:HEADER] = shape
        views, used = unpack(*pools)
        if tuple(used) != sizes:
            raise AssertionError(f"tree pool layout mismatch: used {used}, allocated {sizes}")
        buf = TreeBuffers(pools, np.zeros(batch, np.bool_), *views)
        buf.child_index[:] = -1
        if len(_CACHE) >= 16:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = buf
    return buf


@njit(cache=True, inline="always")
def init_node(nodes_f, nodes_i, child_index, b, node, parent, depth, reset, value, value_prefix, reward,
              num_children):
    """Create node ``node`` of tree ``b`` with its network outputs (no visits yet)."""
    nodes_f[b, node, VSUM] = 0.0
    nodes_f[b, node, VPREFIX] = value_prefix
    nodes_f[b, node, REWARD] = reward
    nodes_f[b, node, RAW] = value
    nodes_i[b, node, VISITS] = 0
    nodes_i[b, node, RESET] = reset
    nodes_i[b, node, DEPTH] = depth
    nodes_i[b, node, NCHILD] = num_children
    nodes_i[b, node, PARENT] = parent
    for a in range(num_children):
        child_index[b, node, a] = -1


@njit(cache=True, inline="always")
def softmax_priors(child_f, b, node, logits, row, num_children):
    """Prior probabilities and log priors of a discrete node from its logits ``logits[row] [A]`` (max-shifted;
    the row index is passed instead of a row view so that no array view is made per expansion)."""
    top = logits[row, 0]
    for a in range(1, num_children):
        if logits[row, a] > top:
            top = logits[row, a]
    total = 0.0
    for a in range(num_children):
        e = np.exp(np.float64(logits[row, a]) - top)
        child_f[b, node, a, PRIOR] = e
        total += e
    log_total = np.log(total)
    for a in range(num_children):
        child_f[b, node, a, PRIOR] = child_f[b, node, a, PRIOR] / total
        child_f[b, node, a, LOGIT] = np.float64(logits[row, a]) - top - log_total


@njit(cache=True, inline="always")
def backpropagate(nodes_f, nodes_i, rows_f, rows_i, path, b, leaf_value, discount, num_nodes):
    """Back the leaf value up the stored path of tree ``b`` and refresh the tree's Q range.

    EfficientZero order: each node first receives the return seen from it, then the return is discounted
    and gets the node's reward added. The Q range stays the min/max of the current Q of every created
    non-root node (EfficientZero rebuilds it after every backup); it is only rebuilt here when a changed
    node held an extreme, otherwise extended with the path's new Q values, which gives the same result.
    """
    length = rows_i[b, PATH_LEN]
    qmin = rows_f[b, QMIN]
    qmax = rows_f[b, QMAX]
    rebuild = False
    ret = leaf_value
    for i in range(length - 1, -1, -1):
        node = path[b, i]
        visits = nodes_i[b, node, VISITS]
        if i > 0 and visits > 0:
            old = nodes_f[b, node, REWARD] + discount * (nodes_f[b, node, VSUM] / visits)
            if old <= qmin or old >= qmax:
                rebuild = True
        nodes_f[b, node, VSUM] += ret
        nodes_i[b, node, VISITS] = visits + 1
        ret = nodes_f[b, node, REWARD] + discount * ret
    depth = length - 1
    rows_i[b, DEPTH_SUM] += depth
    if depth > rows_i[b, DEPTH_MAX]:
        rows_i[b, DEPTH_MAX] = depth
    if rebuild:
        update_min_max(nodes_f, nodes_i, rows_f, b, num_nodes, discount)
        return
    for i in range(1, length):
        node = path[b, i]
        q = nodes_f[b, node, REWARD] + discount * (nodes_f[b, node, VSUM] / nodes_i[b, node, VISITS])
        if q < qmin:
            qmin = q
        if q > qmax:
            qmax = q
    rows_f[b, QMIN] = qmin
    rows_f[b, QMAX] = qmax


@njit(cache=True, inline="always")
def update_min_max(nodes_f, nodes_i, rows_f, b, num_nodes, discount):
    """Recompute the tree's Q range over the current Q = r + discount * V of every created non-root node
    (EfficientZero clears and rebuilds its min-max statistics after every backup)."""
    qmin = np.inf
    qmax = -np.inf
    for node in range(1, num_nodes):
        visits = nodes_i[b, node, VISITS]
        if visits > 0:
            q = nodes_f[b, node, REWARD] + discount * (nodes_f[b, node, VSUM] / visits)
            if q < qmin:
                qmin = q
            if q > qmax:
                qmax = q
    rows_f[b, QMIN] = qmin
    rows_f[b, QMAX] = qmax
