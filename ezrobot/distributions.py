"""Tanh-squashed diagonal Gaussian policy with the EfficientZero V2 parameterisation (docs/REFERENCES.md §3).

The policy head emits ``[*B, 2D]``: the first D numbers x_mu give the mean mu = 5 tanh(x_mu / 5), the last D
numbers x_sigma give the standard deviation sigma = softplus(x_sigma + 1) + 0.1. Actions are
a = tanh(u) with u ~ N(mu, sigma^2), so they lie in (-1, 1).

log pi(a) = sum_d [log N(atanh(a_d); mu_d, sigma_d) - log(1 - a_d^2)], with a clipped to +-(1 - 1e-6) before
atanh; the Jacobian term is computed in the stable form log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

MEAN_SCALE = 5.0
"""mu = MEAN_SCALE * tanh(x / MEAN_SCALE)."""
STD_SHIFT = 1.0
"""sigma = softplus(x + STD_SHIFT) + STD_MIN."""
STD_MIN = 0.1
"""Lower bound of sigma."""
ACTION_CLIP = 1.0 - 1e-6
"""Actions are clipped to +-ACTION_CLIP before atanh."""

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def head_to_mean_std(head: torch.Tensor) -> tuple:
    """Split a policy-head output ``[*B, 2D]`` into (mu ``[*B, D]``, sigma ``[*B, D]``), float32."""
    if head.shape[-1] % 2 != 0 or head.shape[-1] == 0:
        raise ValueError(f"continuous policy head must have an even, non-zero width 2*D, got {head.shape[-1]}")
    x_mu, x_sigma = head.float().chunk(2, dim=-1)
    mean = MEAN_SCALE * torch.tanh(x_mu / MEAN_SCALE)
    std = F.softplus(x_sigma + STD_SHIFT) + STD_MIN
    return mean, std


def _log_one_minus_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2), numerically stable for large |u|."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


class SquashedGaussian:
    """Diagonal Gaussian N(mu, sigma^2) pushed through tanh.

    Args:
        mean: mu ``[*B, D]`` (pre-tanh mean).
        std: sigma ``[*B, D]`` (> 0).

    Raises:
        ValueError: if shapes differ.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        if mean.shape != std.shape:
            raise ValueError(f"mean shape {tuple(mean.shape)} != std shape {tuple(std.shape)}")
        self.mean = mean
        self.std = std

    @classmethod
    def from_head(cls, head: torch.Tensor) -> "SquashedGaussian":
        """Build from the policy head output ``[*B, 2D]`` with the EZ-V2 parameterisation."""
        return cls(*head_to_mean_std(head))

    @property
    def action_dim(self) -> int:
        """D."""
        return self.mean.shape[-1]

    def _align(self, actions: torch.Tensor) -> tuple:
        """Mean/std broadcastable to ``actions``: ``[*B, D]`` or ``[*B, K, D]`` (K samples per row)."""
        if actions.shape[-1] != self.action_dim:
            raise ValueError(f"actions have last dim {actions.shape[-1]}, the policy has D={self.action_dim}")
        if actions.dim() == self.mean.dim():
            return self.mean, self.std
        if actions.dim() == self.mean.dim() + 1:
            return self.mean.unsqueeze(-2), self.std.unsqueeze(-2)
        raise ValueError(f"actions of shape {tuple(actions.shape)} do not match the policy batch "
                         f"{tuple(self.mean.shape)}: expected [*B, D] or [*B, K, D]")

    def log_prob(self, actions: torch.Tensor, clip: float = ACTION_CLIP) -> torch.Tensor:
        """Log-density of squashed actions (tanh correction included).

        Args:
            actions: ``[*B, D]`` or ``[*B, K, D]`` in [-1, 1].
            clip: The actions are clipped to +-clip before atanh (default +-(1 - 1e-6)).

        Returns:
            ``[*B]`` or ``[*B, K]`` float32.
        """
        mean, std = self._align(actions)
        a = actions.float().clamp(-clip, clip)
        u = torch.atanh(a)
        return self._log_prob_pre_tanh(u, mean, std)

    @staticmethod
    def _log_prob_pre_tanh(u: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        z = (u - mean) / std
        gaussian = -0.5 * z * z - torch.log(std) - _LOG_SQRT_2PI
        return (gaussian - _log_one_minus_tanh_sq(u)).sum(-1)

    def _noise(self, num_samples: Optional[int], generator: Optional[torch.Generator]) -> torch.Tensor:
        shape = self.mean.shape if num_samples is None else (*self.mean.shape[:-1], num_samples, self.action_dim)
        return torch.randn(shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)

    def rsample(self, num_samples: Optional[int] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Reparameterised sample tanh(mu + sigma eps).

        Args:
            num_samples: None for one sample ``[*B, D]``, else K samples ``[*B, K, D]``.
            generator: Optional torch generator (on the distribution's device).
        """
        mean, std = (self.mean, self.std) if num_samples is None else (self.mean.unsqueeze(-2), self.std.unsqueeze(-2))
        return torch.tanh(mean + std * self._noise(num_samples, generator))

    def sample(self, num_samples: Optional[int] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Like :meth:`rsample` without gradient."""
        with torch.no_grad():
            return self.rsample(num_samples, generator)

    def entropy(self, num_samples: int = 1, generator: Optional[torch.Generator] = None,
                clip: float = ACTION_CLIP) -> torch.Tensor:
        """Monte-Carlo entropy estimate -E[log pi(a)] from reparameterised samples: ``[*B]``.

        The estimate is differentiable in mu and sigma; it is unbiased, and its Gaussian part is exact
        (the samples only enter through the tanh Jacobian term and the standardised residual). With
        ``clip`` < ``ACTION_CLIP`` it is EZ-V2's estimate instead: -mean log pi(clip(a)) with the samples
        clipped to +-clip (a clipped sample passes no gradient through its position): once sigma saturates
        the tanh it falls with sigma far more slowly than the unclipped entropy, whose Jacobian term has no
        floor, so its bonus brakes sigma far less (tests/test_policy_loss.py).
        """
        if num_samples < 1:
            raise ValueError(f"entropy num_samples={num_samples!r} must be >= 1")
        mean, std = self.mean.unsqueeze(-2), self.std.unsqueeze(-2)
        eps = self._noise(num_samples, generator)
        u = mean + std * eps
        if clip < ACTION_CLIP:
            bound = math.atanh(clip)
            return -self._log_prob_pre_tanh(u.clamp(-bound, bound), mean, std).mean(-1)
        gaussian_entropy = (torch.log(self.std) + 0.5 + _LOG_SQRT_2PI).sum(-1)
        jacobian = _log_one_minus_tanh_sq(u).sum(-1).mean(-1)
        return gaussian_entropy + jacobian

    def mode(self) -> torch.Tensor:
        """tanh(mu) ``[*B, D]``: the deterministic (evaluation) action."""
        return torch.tanh(self.mean)
