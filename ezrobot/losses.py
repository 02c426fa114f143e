"""Pure loss functions. Each returns a per-sample loss vector ``[B]`` (float32) so that the learner can apply
masks, importance weights, coefficients and the 1/K unroll scaling itself.

Shapes: B batch, S support bins or |A| discrete actions, K sampled actions, D action dimension, P projection.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ezrobot.distributions import ACTION_CLIP, SquashedGaussian


def cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """-sum_s target_s log softmax(logits)_s: value, value prefix / reward and discrete policy losses.

    Args:
        logits: ``[B, S]``.
        target_probs: ``[B, S]`` (e.g. two-hot projections or visit distributions; no gradient needed).

    Returns:
        ``[B]``.
    """
    if logits.shape != target_probs.shape:
        raise ValueError(f"logits shape {tuple(logits.shape)} != target shape {tuple(target_probs.shape)}")
    return -(target_probs.float() * F.log_softmax(logits.float(), dim=-1)).sum(-1)


def sampled_policy_cross_entropy(dist: SquashedGaussian, sampled_actions: torch.Tensor,
                                 target_probs: torch.Tensor, clip: float = ACTION_CLIP) -> torch.Tensor:
    """Continuous policy loss over the searched samples: -sum_k target_k log pi(a_k).

    Args:
        dist: The predicted policy (batch ``[B]``, dimension D).
        sampled_actions: ``[B, K, D]`` the actions the search target refers to.
        target_probs: ``[B, K]`` search target weights (normalised visits or the improved policy).
        clip: The actions are clipped to +-clip before atanh (``train.policy_action_clip``).

    Returns:
        ``[B]``.
    """
    if sampled_actions.dim() != 3 or target_probs.shape != sampled_actions.shape[:2]:
        raise ValueError(f"expected sampled_actions [B, K, D] and target_probs [B, K], got "
                         f"{tuple(sampled_actions.shape)} and {tuple(target_probs.shape)}")
    return -(target_probs.float() * dist.log_prob(sampled_actions, clip)).sum(-1)


def best_action_nll(dist: SquashedGaussian, best_action: torch.Tensor, clip: float = ACTION_CLIP) -> torch.Tensor:
    """EZ-V2 multi-dimensional policy loss: -log pi(a*) of the search's chosen action ``[B, D]`` -> ``[B]``,
    a* clipped to +-clip before atanh (``train.policy_action_clip``; EZ-V2: 0.999)."""
    if best_action.dim() != 2:
        raise ValueError(f"best_action must be [B, D], got {tuple(best_action.shape)}")
    return -dist.log_prob(best_action, clip)


def split_policy_loss(dist: SquashedGaussian, best_action: torch.Tensor, sampled_actions: torch.Tensor,
                      target_probs: torch.Tensor, clip: float = ACTION_CLIP) -> torch.Tensor:
    """``train.policy_loss=split``: the mean follows the search's chosen action, -log pi(a*) with sigma held,
    and sigma follows the importance-weighted target over the samples (``target_probs [B, K]``, see
    :func:`sampled_policy_cross_entropy`) with the mean held -> ``[B]``. Where the search does not rank its
    samples the first term has no preferred direction and the second keeps sigma."""
    held_std = SquashedGaussian(dist.mean, dist.std.detach())
    held_mean = SquashedGaussian(dist.mean.detach(), dist.std)
    return (best_action_nll(held_std, best_action, clip)
            + sampled_policy_cross_entropy(held_mean, sampled_actions, target_probs, clip))


def entropy_bonus(dist: SquashedGaussian, coeff: float, num_samples: int = 1,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Loss term -coeff * H(pi) ``[B]`` (add it to the policy loss to encourage exploration).

    H is the differentiable Monte-Carlo estimate of :meth:`SquashedGaussian.entropy` with ``num_samples``.
    """
    return -coeff * dist.entropy(num_samples, generator)


def consistency(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SimSiam temporal consistency: negative cosine similarity, no gradient into ``target``.

    Args:
        prediction: ``[B, P]`` predictor(projector(dynamics latent)).
        target: ``[B, P]`` projector(representation of the real observation); detached here.

    Returns:
        ``[B]`` in [-1, 1].
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(prediction.shape)} != target shape {tuple(target.shape)}")
    p = F.normalize(prediction.float(), dim=-1, eps=1e-5)
    z = F.normalize(target.detach().float(), dim=-1, eps=1e-5)
    return -(p * z).sum(-1)


def latent_consistency(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Latent consistency (TD-MPC2): mean squared error over the latent entries, no gradient into ``target``.

    Args:
        prediction: ``[B, *L]`` the dynamics' latent.
        target: ``[B, *L]`` the representation of the real observation; detached here.

    Returns:
        ``[B]``, >= 0.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(prediction.shape)} != target shape {tuple(target.shape)}")
    diff = prediction.float() - target.detach().float()
    return diff.reshape(diff.shape[0], -1).square().mean(-1)
