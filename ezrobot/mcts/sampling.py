"""Continuous children: K actions per expanded node from its tanh-squashed Gaussian (numba).

The policy head ``[2D]`` gives mu = 5 tanh(x_mu / 5) and sigma = softplus(x_sigma + 1) + 0.1 (the same
parameterisation as ``ezrobot.distributions``); action k is tanh(mu + sigma * eps_k) with eps drawn by the
caller from its numpy Generator, so one seed gives one tree. Interior nodes use a uniform prior 1/K
(Sampled MuZero with beta = pi). The root's K actions are all drawn (and evaluated) before the search. An
interior node only stores its (mu, sigma); the action of its child k is drawn when a simulation first
expands that child, from that simulation's noise. This is the same distribution as drawing all K up front
(deferred decisions): the K children of an interior node share one prior and one unvisited value, so no
selection rule looks at an action before its child is expanded. The root may draw its last W samples
from a widened proposal with std sigma * s (EZ-V2); then pUCT uses the Sampled MuZero prior
beta_hat / beta * pi with the mixture density
beta = (1 - W/K) N(mu, sigma) + (W/K) N(mu, s sigma) in pre-tanh space (the tanh Jacobian cancels);
Gumbel uses it as its root logits with ``SearchConfig.sampled_gumbel_importance``, else the uniform
logits of EZ-V2.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ezrobot.mcts.tree import LOGIT, PRIOR

MEAN_SCALE = 5.0
"""mu = MEAN_SCALE * tanh(x / MEAN_SCALE) (matches ``ezrobot.distributions``)."""
STD_SHIFT = 1.0
"""sigma = softplus(x + STD_SHIFT) + STD_MIN."""
STD_MIN = 0.1
"""Lower bound of sigma."""


@njit(cache=True, inline="always")
def softplus(x):
    """log(1 + exp(x)) with torch's linear regime above 20."""
    if x > 20.0:
        return x
    return np.log1p(np.exp(x))


@njit(cache=True, inline="always")
def head_mean_std(heads, row, d):
    """(mu, sigma) of action dimension ``d`` from the policy head ``heads[row] [2D]`` (a row index rather
    than a row view, so that no array view is made per node)."""
    dims = heads.shape[1] // 2
    mu = MEAN_SCALE * np.tanh(np.float64(heads[row, d]) / MEAN_SCALE)
    sigma = softplus(np.float64(heads[row, dims + d]) + STD_SHIFT) + STD_MIN
    return mu, sigma


@njit(cache=True, inline="always")
def sample_children(child_f, child_action, b, node, heads, row, eps, num, num_widened, widen_scale):
    """Write ``num`` squashed samples into ``child_action[b, node, :num]`` and a uniform prior.

    Args:
        heads, row: the node's policy head is ``heads[row] [2D]``.
        eps: ``[>=num, D]`` float32 standard normal noise.
        num_widened: The last ``num_widened`` samples use sigma * ``widen_scale``.
    """
    for d in range(heads.shape[1] // 2):
        mu, sigma = head_mean_std(heads, row, d)
        for k in range(num):
            s = sigma * widen_scale if k >= num - num_widened else sigma
            child_action[b, node, k, d] = np.tanh(mu + s * np.float64(eps[k, d]))
    log_uniform = -np.log(np.float64(num))
    for k in range(num):
        child_f[b, node, k, PRIOR] = 1.0 / num
        child_f[b, node, k, LOGIT] = log_uniform


@njit(cache=True, inline="always")
def set_distribution(child_f, node_dist, b, node, heads, row, num):
    """Store the Gaussian (mu, sigma) of an interior node, from the policy head ``heads[row] [2D]``, in
    ``node_dist[b, node]`` and a uniform prior over its ``num`` children (whose actions are drawn lazily by
    :func:`child_action_from`)."""
    for d in range(heads.shape[1] // 2):
        mu, sigma = head_mean_std(heads, row, d)
        node_dist[b, node, 0, d] = mu
        node_dist[b, node, 1, d] = sigma
    log_uniform = -np.log(np.float64(num))
    for k in range(num):
        child_f[b, node, k, PRIOR] = 1.0 / num
        child_f[b, node, k, LOGIT] = log_uniform


@njit(cache=True, inline="always")
def child_action_from(child_action, node_dist, b, node, a, eps):
    """Draw the action of child ``a`` of an interior node of tree ``b``: tanh(mu + sigma * eps[b]) with
    ``eps [B, D]``."""
    for d in range(eps.shape[1]):
        child_action[b, node, a, d] = np.tanh(node_dist[b, node, 0, d]
                                              + node_dist[b, node, 1, d] * np.float64(eps[b, d]))


@njit(cache=True, inline="always")
def importance_prior(child_f, b, node, heads, row, eps, num, num_widened, widen_scale):
    """Replace the uniform prior with beta_hat / beta * pi for a widened root proposal (see module doc); the
    node's policy head is ``heads[row] [2D]``.

    The pre-tanh sample is mu + s * eps, so its standardised offset is s * eps / sigma.
    """
    dims = heads.shape[1] // 2
    w = num_widened / num
    log_keep = np.log(1.0 - w) if w < 1.0 else -np.inf
    log_wide = np.log(w)
    total = 0.0
    for k in range(num):
        log_pi = 0.0
        log_w = 0.0
        for d in range(dims):
            _, sigma = head_mean_std(heads, row, d)
            s = widen_scale if k >= num - num_widened else 1.0
            z = s * np.float64(eps[k, d])  # (u - mu) / sigma
            log_pi += -0.5 * z * z - np.log(sigma)
            zw = z / widen_scale
            log_w += -0.5 * zw * zw - np.log(sigma * widen_scale)
        a = log_keep + log_pi
        c = log_wide + log_w
        top = a if a > c else c
        log_beta = top + np.log(np.exp(a - top) + np.exp(c - top))
        ratio = np.exp(log_pi - log_beta)
        child_f[b, node, k, PRIOR] = ratio
        total += ratio
    for k in range(num):
        p = child_f[b, node, k, PRIOR] / total
        child_f[b, node, k, PRIOR] = p
        child_f[b, node, k, LOGIT] = np.log(p)
