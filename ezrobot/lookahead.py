"""Policy targets from a batched one-step look-ahead: the sampled Gumbel search at depth one, in torch.

A sampled Gumbel search (docs/REFERENCES.md §3) whose simulation budget equals the number of considered root
samples gives each of them exactly one simulation: every simulation expands one root child, so the search
is a one-step look-ahead Q(a_k) = r(s, a_k) + discount * V(g(s, a_k)) over the K root samples, and its
targets follow in closed form. This module computes those targets for a whole batch with a few tensor
operations (one dynamics call over N x K rows) instead of N numba trees, so that every replay row can get a
fresh policy target at each update (``train.reanalyze_search=one_step``).

For each root (row n):

1. K actions a_k = tanh(mu + sigma * s_k * eps_k), eps ~ N(0, I) from the caller's generator, s_k = 1 for
   the first K - W samples and ``widen_std_scale`` for the last W (the widened training proposal).
2. Root logits: uniform, or log(pi / beta) normalised over the K samples with
   ``sampled_gumbel_importance`` (beta the mixture of pi and the widened proposal).
3. Gumbel noise g_k with ``sampled_gumbel_noise``, else 0; the m = min(``gumbel_top_m``, K) samples with the
   largest g + logits are considered, and each is evaluated once: q_k = r_k + discount * v_k.
4. Completed Q: q_k for the considered samples, the mixed value v_mix for the others; min-max normalised
   over the considered q (the tree's range: one Q per created node), floored at ``min_max_floor``, clipped
   to [0, 1]; sigma(q) = (c_visit + 1) * c_scale * q.
5. Improved policy pi' = softmax(logits + sigma(q)); chosen action a* = argmax over the considered samples
   of g + logits + sigma(q); search value estimate = the mean of the m returns q_k. With
   ``target_importance`` the returned policy is softmax(log(pi / beta) + sigma(q)) whatever the root logits
   (Sampled MuZero's improved policy: where q says nothing it is a self-normalised importance sample of pi,
   so a policy fitted to it keeps its sigma); a* is still the search's.

With the same generator state these are the numbers the numba search returns for ``num_simulations = m``
(tests/test_lookahead.py checks it against ``SearchAgent.search``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ezrobot.distributions import head_to_mean_std
from ezrobot.mcts.config import SearchConfig


@dataclass(frozen=True)
class LookaheadOutput:
    """Targets of one batched one-step look-ahead (N roots, K samples, D action dimensions)."""

    policy: np.ndarray
    """``[N, K]`` float32 improved policy pi' over the samples."""
    sampled_actions: np.ndarray
    """``[N, K, D]`` float32 the root samples."""
    action: np.ndarray
    """``[N, D]`` float32 the chosen action a*."""
    sve_value: np.ndarray
    """``[N]`` float32 mean of the considered samples' one-step returns."""
    q_values: np.ndarray
    """``[N, K]`` float32 completed Q (unnormalised)."""


def importance_logits(eps: torch.Tensor, num_widened: int, widen_scale: float) -> torch.Tensor:
    """log(pi / beta) of K samples, normalised over K: ``eps [N, K, D]`` standard normal noise -> ``[N, K]``.

    The pre-tanh offset of sample k in units of the policy's sigma is z = s_k eps_k; beta is the mixture
    (1 - W/K) N(mu, sigma) + (W/K) N(mu, s sigma). The tanh Jacobian and the sigma terms cancel.
    """
    k = eps.shape[1]
    scale = _sample_scales(k, num_widened, widen_scale, eps.device)
    z = eps.double() * scale[None, :, None]
    log_pi = (-0.5 * z * z).sum(-1)
    log_wide = (-0.5 * (z / widen_scale) ** 2).sum(-1) - eps.shape[2] * np.log(widen_scale)
    w = num_widened / k
    log_keep = np.log(1.0 - w) if w < 1.0 else -np.inf
    log_beta = torch.logaddexp(log_keep + log_pi, np.log(w) + log_wide)
    return torch.log_softmax(log_pi - log_beta, dim=-1)


def _sample_scales(k: int, num_widened: int, widen_scale: float, device) -> torch.Tensor:
    """``[K]``: 1 for the samples from pi, ``widen_scale`` for the last ``num_widened``."""
    scale = torch.ones(k, dtype=torch.float64, device=device)
    if num_widened > 0:
        scale[k - num_widened:] = widen_scale
    return scale


def _sample_q(model: torch.nn.Module, latent: torch.Tensor, actions: torch.Tensor, discount: float,
              critic: bool) -> torch.Tensor:
    """``[N, K]`` float64 Q of the root samples ``actions [N, K, D]``: r + discount * V(g(s, a)) by one batched
    dynamics call, or the critic's min over heads with ``critic``."""
    n, k, d = actions.shape
    flat = latent.repeat_interleave(k, dim=0)
    if critic:
        return model.critic_q(flat, actions.reshape(n * k, d)).min(dim=0).values.double().reshape(n, k)
    lstm = model.initial_lstm_state(n * k, latent.device)
    _, reward_logits, _, next_value_logits, _ = model.recurrent_inference(flat, actions.reshape(n * k, d), lstm)
    reward = model.reward_support.logits_to_scalar(reward_logits).double().reshape(n, k)
    next_value = model.value_support.logits_to_scalar(next_value_logits).double().reshape(n, k)
    return reward + discount * next_value


def normalized_q(q: torch.Tensor, considered: torch.Tensor, floor: float) -> torch.Tensor:
    """Min-max normalise ``q [N, K]`` by the range of the ``considered [N, K]`` entries (floored), clipped
    to [0, 1]."""
    qmin = torch.where(considered, q, torch.full_like(q, np.inf)).min(-1, keepdim=True).values
    qmax = torch.where(considered, q, torch.full_like(q, -np.inf)).max(-1, keepdim=True).values
    return ((q - qmin) / (qmax - qmin).clamp_min(floor)).clamp(0.0, 1.0)


@torch.no_grad()
def one_step_search(model: torch.nn.Module, obs: torch.Tensor, cfg: SearchConfig, discount: float,
                    rng: np.random.Generator, critic: bool = False, target_importance: bool = False) -> LookaheadOutput:
    """Targets of a training-mode sampled Gumbel search with one simulation per considered root sample.

    Args:
        model: An ``EfficientZeroNet`` with a continuous policy head (the reanalysis' target network).
        obs: ``[N, *O]`` observations on the model's device.
        cfg: The search settings (K, widening, importance logits, Gumbel noise, top-m, c_visit, c_scale).
        discount: Per agent step.
        rng: Draws the sample noise ``[N, K, D]`` and then the Gumbel noise ``[N, K]``, in the numba
            search's order.
        critic: Take each sample's Q from the model's critic, min_i Q_i(s, a_k) (``model.critic_heads``),
            instead of r + discount * V(g(s, a_k)).
        target_importance: Return the improved policy over the log(pi / beta) logits (step 5).
    """
    latent, value_logits, head = model.initial_inference(obs)
    root_value = model.value_support.logits_to_scalar(value_logits).double()
    mean, std = (x.double() for x in head_to_mean_std(head))
    n, d = mean.shape
    k, w = cfg.num_sampled_actions, cfg.widened_count()
    eps = torch.from_numpy(rng.standard_normal((n, k, d), dtype=np.float32)).to(obs.device)
    scale = _sample_scales(k, w, float(cfg.widen_std_scale), obs.device)
    actions = torch.tanh(mean[:, None] + std[:, None] * scale[None, :, None] * eps.double()).float()
    logits = (importance_logits(eps, w, float(cfg.widen_std_scale)) if cfg.sampled_gumbel_importance and w > 0
              else torch.full((n, k), -np.log(k), dtype=torch.float64, device=obs.device))
    gumbel = torch.zeros_like(logits)
    if cfg.sampled_gumbel_noise:
        gumbel = torch.from_numpy(rng.gumbel(size=(n, k))).to(obs.device)
    q = _sample_q(model, latent, actions, discount, critic)
    m = min(int(cfg.gumbel_top_m), k)
    considered = torch.zeros((n, k), dtype=torch.bool, device=obs.device)
    considered.scatter_(1, (gumbel + logits).topk(m, dim=-1).indices, True)
    prior = torch.softmax(logits, dim=-1)
    weight = torch.where(considered, prior, torch.zeros_like(prior))
    mixed = (root_value + m * (weight * q).sum(-1) / weight.sum(-1)) / (1.0 + m)
    completed = torch.where(considered, q, mixed[:, None])
    sigma = (cfg.c_visit + 1.0) * cfg.c_scale * normalized_q(completed, considered, cfg.min_max_floor)
    score = torch.where(considered, gumbel + logits + sigma, torch.full_like(sigma, -np.inf))
    chosen = score.argmax(-1)
    sve = torch.where(considered, q, torch.zeros_like(q)).sum(-1) / m
    target_logits = importance_logits(eps, w, float(cfg.widen_std_scale)) if target_importance else logits
    return LookaheadOutput(
        policy=torch.softmax(target_logits + sigma, dim=-1).float().cpu().numpy(),
        sampled_actions=actions.cpu().numpy(),
        action=actions[torch.arange(n, device=obs.device), chosen].cpu().numpy(),
        sve_value=sve.float().cpu().numpy(), q_values=completed.float().cpu().numpy())
