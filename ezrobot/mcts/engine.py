"""The batched search engine: numba kernels over the tree arrays and the Python simulation loop.

One kernel call per simulation backs up the previous simulation's network outputs in every tree and
selects the next path, so each simulation costs one batched ``recurrent_fn`` call and one kernel call.

Random numbers come only from the caller's numpy Generator, in this order: the continuous root samples'
noise ``[B, K, D]``; the root noise (training: Dirichlet ``[B, K]`` for pUCT, Gumbel ``[B, K]`` for Gumbel);
one tie-breaking seed; per simulation s (continuous spaces), the noise ``[B, D]`` of the action of the child
that s creates below an interior node (see ``sampling``); and for pUCT self-play one uniform per tree to
sample the action from the visit counts.

Speed notes: the kernels never allocate, so they are compiled without numba's reference-counted runtime
(``_nrt=False``): with it, every array passed into an inlined helper paid atomic incref/decref pairs, about
a quarter of the search time (``perf``); without it the W2 Gumbel workload of ``ezrobot bench search`` ran
1.4x faster. Helpers take row indices rather than row views for the same reason, and all tree arrays are
views of four flat pools, so one kernel call unboxes 11 arguments.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit

from ezrobot.mcts.action_selection import (gumbel_scores, improved_policy, select_gumbel_interior,
                                           select_gumbel_root, select_puct)
from ezrobot.mcts.qtransforms import completed_q
from ezrobot.mcts.sampling import child_action_from, importance_prior, sample_children, set_distribution
from ezrobot.mcts.tree import (DEPTH, DEPTH_MAX, DEPTH_SUM, LOGIT, NCHILD, PATH_LEN, PRIOR, QMAX, QMIN, RAW,
                               RESET, TERMINAL, VISITS, VPREFIX, VSUM, TreeBuffers, backpropagate, init_node, unpack,
                               softmax_priors)

# integer parameters
P_GUMBEL, P_CONTINUOUS, P_USE_VP, P_HORIZON, P_DEPTH_BOUND, P_K_INTERIOR, P_SEED = 0, 1, 2, 3, 4, 5, 6
# float parameters
F_DISCOUNT, F_PB_C_BASE, F_PB_C_INIT, F_FLOOR, F_C_VISIT, F_C_SCALE, F_PER_NODE = 0, 1, 2, 3, 4, 5, 6


@njit(cache=True, error_model="numpy", _nrt=False)
def init_roots(value, policy, eps_root, noise, frac, num_widened, widen_scale, importance, num_root, continuous,
               nodes_f, nodes_i, child_index, child_f, child_action, rows_f, rows_i):
    """Create and expand the B roots (visit count 1, value sum 0, as in EfficientZero)."""
    for b in range(value.shape[0]):
        init_node(nodes_f, nodes_i, child_index, b, 0, -1, 0, 1, np.float64(value[b]), 0.0, 0.0, num_root)
        nodes_i[b, 0, VISITS] = 1
        if continuous:
            sample_children(child_f, child_action, b, 0, policy, b, eps_root[b], num_root, num_widened,
                            widen_scale)
            if importance and num_widened > 0:
                importance_prior(child_f, b, 0, policy, b, eps_root[b], num_root, num_widened, widen_scale)
        else:
            softmax_priors(child_f, b, 0, policy, b, num_root)
        if frac > 0.0:
            for a in range(num_root):
                p = child_f[b, 0, a, PRIOR] * (1.0 - frac) + noise[b, a] * frac
                child_f[b, 0, a, PRIOR] = p
                child_f[b, 0, a, LOGIT] = np.log(p)
        rows_f[b, QMIN] = np.inf
        rows_f[b, QMAX] = -np.inf
        for f in range(4):
            rows_i[b, f] = 0


@njit(cache=True, inline="always")
def _traverse(b, sim, eps, nodes_f, nodes_i, child_index, child_f, child_action, node_dist, rows_f, rows_i, path,
              gumbel, table, pf, pi, visits, ties, q, x, out_parent, out_act_i, out_act_f, out_reset):
    """Select the path of simulation ``sim`` in tree ``b`` and write the network inputs of its leaf
    (``visits``, ``ties``, ``q``, ``x``: scratch rows ``[C]``)."""
    node = 0
    depth = 0
    path[b, 0] = 0
    parent_q = 0.0
    discount = pf[F_DISCOUNT]
    while depth < pi[P_DEPTH_BOUND]:
        if pi[P_GUMBEL] == 0:
            a, parent_q = select_puct(nodes_f, nodes_i, child_index, child_f, rows_f, b, node, depth == 0, parent_q,
                                      discount, pf[F_PB_C_BASE], pf[F_PB_C_INIT], pf[F_FLOOR], pi[P_SEED], sim,
                                      depth, visits, ties, q)
        elif depth == 0:
            a = select_gumbel_root(nodes_f, nodes_i, child_index, child_f, rows_f, gumbel, b, table[sim],
                                   discount, pf[F_FLOOR], pf[F_PER_NODE] > 0, pf[F_C_VISIT], pf[F_C_SCALE], visits,
                                   q)
        else:
            a = select_gumbel_interior(nodes_f, nodes_i, child_index, child_f, rows_f, b, node, discount,
                                       pf[F_FLOOR], pf[F_PER_NODE] > 0, pf[F_C_VISIT], pf[F_C_SCALE], visits, q,
                                       x)
        child = child_index[b, node, a]
        depth += 1
        if child < 0:
            child_index[b, node, a] = sim + 1
            path[b, depth] = sim + 1
            rows_i[b, PATH_LEN] = depth + 1
            rows_i[b, TERMINAL] = 0
            out_parent[b] = node
            out_act_i[b] = a
            if pi[P_CONTINUOUS] == 1 and node > 0:
                child_action_from(child_action, node_dist, b, node, a, eps)
            for d in range(out_act_f.shape[1]):
                out_act_f[b, d] = child_action[b, node, a, d]
            out_reset[b] = pi[P_USE_VP] == 0 or depth % pi[P_HORIZON] == 0
            return
        path[b, depth] = child
        node = child
    rows_i[b, PATH_LEN] = depth + 1
    rows_i[b, TERMINAL] = 1
    out_parent[b] = node
    out_act_i[b] = 0
    for d in range(out_act_f.shape[1]):
        out_act_f[b, d] = 0.0
    out_reset[b] = True


@njit(cache=True, inline="always")
def _expand_backup(b, sim, value, value_prefix, policy, nodes_f, nodes_i, child_index, child_f, node_dist,
                   rows_f, rows_i, path, pf, pi):
    """Expand the leaf of simulation ``sim`` in tree ``b`` with its network outputs and back it up."""
    length = rows_i[b, PATH_LEN]
    leaf = path[b, length - 1]
    if rows_i[b, TERMINAL] == 1:
        leaf_value = nodes_f[b, leaf, RAW]
        nodes_i[b, sim + 1, VISITS] = 0  # the slot stays unused: keep stale data out of the min-max
        nodes_i[b, sim + 1, NCHILD] = 0
    else:
        parent = path[b, length - 2]
        vp = np.float64(value_prefix[b])
        reward = vp if nodes_i[b, parent, RESET] == 1 else vp - nodes_f[b, parent, VPREFIX]
        depth = nodes_i[b, parent, DEPTH] + 1
        reset = 1 if (pi[P_USE_VP] == 0 or depth % pi[P_HORIZON] == 0) else 0
        leaf_value = np.float64(value[b])
        if pi[P_CONTINUOUS] == 1:
            num = pi[P_K_INTERIOR]
            init_node(nodes_f, nodes_i, child_index, b, leaf, parent, depth, reset, leaf_value, vp, reward, num)
            set_distribution(child_f, node_dist, b, leaf, policy, b, num)
        else:
            num = policy.shape[1]
            init_node(nodes_f, nodes_i, child_index, b, leaf, parent, depth, reset, leaf_value, vp, reward, num)
            softmax_priors(child_f, b, leaf, policy, b, num)
    backpropagate(nodes_f, nodes_i, rows_f, rows_i, path, b, leaf_value, pf[F_DISCOUNT], sim + 2)


@njit(cache=True, error_model="numpy", _nrt=False)
def simulation_step(sim, backup, traverse, value, value_prefix, policy, f64, i32, i64, f32, out_reset):
    """Back up simulation ``sim - 1`` (when ``backup``) and select simulation ``sim`` (when ``traverse``)
    in every tree. The tree arrays, parameters, action noise ``eps [B, D]`` and outputs are views of the
    pools (see ``tree.unpack``)."""
    views, _ = unpack(f64, i32, i64, f32)
    (nodes_f, nodes_i, child_index, child_f, child_action, node_dist, rows_f, rows_i, path, gumbel, table, pf,
     pi, scratch_i, scratch_f, out_parent, out_act_i, out_act_f, eps) = views
    visits, ties, q, x = scratch_i[0], scratch_i[1], scratch_f[0], scratch_f[1]
    for b in range(nodes_f.shape[0]):
        if backup:
            _expand_backup(b, sim - 1, value, value_prefix, policy, nodes_f, nodes_i, child_index, child_f,
                           node_dist, rows_f, rows_i, path, pf, pi)
        if traverse:
            _traverse(b, sim, eps, nodes_f, nodes_i, child_index, child_f, child_action, node_dist, rows_f, rows_i,
                      path, gumbel, table, pf, pi, visits, ties, q, x, out_parent, out_act_i, out_act_f, out_reset)


@njit(cache=True, error_model="numpy", _nrt=False)
def finalize(nodes_f, nodes_i, child_index, child_f, rows_f, rows_i, gumbel, pf, pi, num_simulations, train,
             temperature, uniforms, scratch_f, out_visits, out_policy, out_q, out_prior, out_index, out_values,
             out_depth):
    """Root statistics, policy target and chosen child index of every tree.

    ``out_values [B, 2]``: classic root value and SVE mean; ``out_depth [B, 2]``: max and mean leaf depth.
    """
    discount = pf[F_DISCOUNT]
    for b in range(nodes_f.shape[0]):
        num = nodes_i[b, 0, NCHILD]
        visits = out_visits[b]
        visit_sum, visit_max = completed_q(nodes_f, nodes_i, child_index, child_f, b, 0, discount, out_q[b],
                                           visits)
        for a in range(num):
            out_prior[b, a] = child_f[b, 0, a, PRIOR]
        out_values[b, 0] = nodes_f[b, 0, VSUM] / nodes_i[b, 0, VISITS]
        out_values[b, 1] = nodes_f[b, 0, VSUM] / num_simulations
        out_depth[b, 0] = rows_i[b, DEPTH_MAX]
        out_depth[b, 1] = rows_i[b, DEPTH_SUM] / num_simulations
        if pi[P_GUMBEL] == 1:
            per_node = pf[F_PER_NODE] > 0
            improved_policy(nodes_f, nodes_i, child_index, child_f, rows_f, b, 0, discount, pf[F_FLOOR], per_node,
                            pf[F_C_VISIT], pf[F_C_SCALE], visits, scratch_f[0], out_policy[b])
            gumbel_scores(nodes_f, nodes_i, child_index, child_f, rows_f, gumbel, b, visit_max, discount,
                          pf[F_FLOOR], per_node, pf[F_C_VISIT], pf[F_C_SCALE], scratch_f[0], visits, scratch_f[1])
            best = 0
            for a in range(1, num):
                if scratch_f[1, a] > scratch_f[1, best]:
                    best = a
            out_index[b] = best
            continue
        for a in range(num):
            out_policy[b, a] = visits[a] / visit_sum
        out_index[b] = _visit_action(visits, num, train, temperature, uniforms[b])


@njit(cache=True, error_model="numpy", _nrt=False)
def _visit_action(visits, num, train, temperature, u):
    """Argmax of the visits (first maximum), or a sample from N(a)^(1/T) with the uniform ``u``."""
    best = 0
    for a in range(1, num):
        if visits[a] > visits[best]:
            best = a
    if not train:
        return best
    top = np.log(np.float64(visits[best])) / temperature
    total = 0.0
    for a in range(num):
        if visits[a] > 0:
            total += np.exp(np.log(np.float64(visits[a])) / temperature - top)
    target = u * total
    acc = 0.0
    last = best
    for a in range(num):
        if visits[a] > 0:
            acc += np.exp(np.log(np.float64(visits[a])) / temperature - top)
            last = a
            if target < acc:
                return a
    return last


def run_simulations(bufs: TreeBuffers, policy: np.ndarray, recurrent_fn: Callable, num_simulations: int,
               continuous: bool, slot_table: np.ndarray, rng: np.random.Generator) -> None:
    """The simulation loop over already initialised roots (see :func:`simulation_step`).

    The caller has written this search's parameters, Gumbel noise and considered-visits table into
    ``bufs``; each continuous simulation's action noise is drawn into ``bufs.eps``.
    """
    batch, width = policy.shape
    f64, i32, i64, f32 = bufs.pools
    reset = bufs.out_reset
    actions = bufs.out_act_f if continuous else bufs.out_act_i
    empty_v = np.zeros(batch, np.float32)
    if continuous:
        rng.standard_normal(dtype=np.float32, out=bufs.eps)
    simulation_step(0, False, True, empty_v, empty_v, policy, f64, i32, i64, f32, reset)
    for sim in range(num_simulations):
        out = recurrent_fn(bufs.out_parent, actions, slot_table[sim], reset)
        v = _as_f32(out.value, (batch,), "value")
        vp = _as_f32(out.value_prefix, (batch,), "value_prefix")
        pol = _as_f32(out.policy, (batch, width), "policy")
        more = sim + 1 < num_simulations
        if continuous and more:
            rng.standard_normal(dtype=np.float32, out=bufs.eps)
        simulation_step(sim + 1, True, more, v, vp, pol, f64, i32, i64, f32, reset)


_F32 = np.dtype(np.float32)


def _as_f32(x, shape, name: str) -> np.ndarray:
    """``x`` as a C-contiguous float32 array of ``shape`` (returned as is when it already is one: this runs
    three times per simulation).

    Raises:
        ValueError: if the shape differs.
    """
    if type(x) is not np.ndarray or x.dtype is not _F32 or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape != shape:
        raise ValueError(f"recurrent_fn returned {name} of shape {x.shape}; expected {shape}")
    return x
