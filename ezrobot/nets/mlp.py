"""EZ-V2 proprio family for float vector observations (docs/REFERENCES.md §3): pre-LayerNorm residual MLPs.

Representation: Linear(obs -> hidden), ``blocks`` residual MLP blocks, norm, Linear(hidden -> latent_dim).
Dynamics: Linear(latent + action features -> hidden), ``blocks`` blocks, norm, Linear(hidden -> latent_dim),
added to the input latent (residual, as in the conv dynamics). Prediction: Linear(latent -> hidden), ``blocks``
blocks, norm, ReLU, then the value and policy MLPs. Reward / value prefix read the unnormalised next latent.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ezrobot.nets.blocks import ResidualMLPBlock, make_norm
from ezrobot.nets.config import ModelConfig
from ezrobot.nets.heads import ActionEncoder, RewardHead, ValuePolicyHeads


def _trunk(in_features: int, hidden: int, blocks: int, norm: str) -> nn.Sequential:
    """Linear(in -> hidden), ``blocks`` pre-norm residual blocks, final norm."""
    layers = [nn.Linear(in_features, hidden)]
    layers += [ResidualMLPBlock(hidden, hidden, norm) for _ in range(blocks)]
    layers.append(make_norm(norm, hidden, spatial=False))
    return nn.Sequential(*layers)


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) log(1 + |x|) (DreamerV3's input squashing): near the identity around 0, logarithmic beyond."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


class RunningObsNorm(nn.Module):
    """Standardise ``[B, D]`` by a running per-entry mean and variance (EfficientZero V2's proprio input).

    In training mode each call first folds the batch's moments into the running ones (Chan et al.'s
    parallel update, every sample weighted equally over the run), then standardises with the result; in eval
    mode it only standardises. Before any update (count 0) it is the identity. The statistics are buffers,
    so checkpoints, weight copies to self-play and the target network carry them.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold the moments of ``x [B, D]`` into the running mean, variance and count."""
        x = x.detach().float()
        n, count = float(x.shape[0]), float(self.count)
        batch_mean, batch_var = x.mean(dim=0), x.var(dim=0, unbiased=False)
        total = count + n
        delta = batch_mean - self.mean
        m2 = self.var * count + batch_var * n + delta.square() * count * n / total
        self.mean.add_(delta * (n / total))
        self.var.copy_(m2 / total)
        self.count.fill_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See class docstring."""
        if self.training and x.shape[0] > 0:
            self.update(x)
        if float(self.count) == 0.0:
            return x
        return (x.float() - self.mean) / torch.sqrt(self.var + self.eps)


class MLPRepresentation(nn.Module):
    """Observations ``[B, D_obs]`` -> latent ``[B, latent_dim]`` (unnormalised). With ``obs_symlog`` the
    observations are squashed by :func:`symlog` first, and with ``obs_running_norm`` standardised by
    :class:`RunningObsNorm`, so that joint velocities of tens do not swamp angles and positions of a
    fraction of one in the first layer."""

    def __init__(self, obs_dim: int, hidden: int, latent_dim: int, blocks: int, norm: str,
                 obs_symlog: bool = False, obs_running_norm: bool = False):
        super().__init__()
        self.obs_symlog = obs_symlog
        self.obs_norm = RunningObsNorm(obs_dim) if obs_running_norm else None
        self.trunk = _trunk(obs_dim, hidden, blocks, norm)
        self.out = nn.Linear(hidden, latent_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """See class docstring."""
        if self.obs_symlog:
            obs = symlog(obs)
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        return self.out(self.trunk(obs))


class MLPDynamics(nn.Module):
    """(latent ``[B, L]``, action features ``[B, F]``) -> next latent ``[B, L]`` (unnormalised)."""

    def __init__(self, latent_dim: int, action_features: int, hidden: int, blocks: int, norm: str):
        super().__init__()
        self.trunk = _trunk(latent_dim + action_features, hidden, blocks, norm)
        self.out = nn.Linear(hidden, latent_dim)

    def forward(self, latent: torch.Tensor, action_features: torch.Tensor) -> torch.Tensor:
        """See class docstring."""
        x = torch.cat([latent, action_features.to(latent.dtype)], dim=-1)
        return latent + self.out(self.trunk(x))


class MLPPrediction(nn.Module):
    """Latent ``[B, L]`` -> (value_logits ``[B, S]``, policy ``[B, A]``)."""

    def __init__(self, latent_dim: int, hidden: int, blocks: int, head_hidden, value_bins: int,
                 policy_width: int, norm: str):
        super().__init__()
        self.trunk = nn.Sequential(_trunk(latent_dim, hidden, blocks, norm), nn.ReLU())
        self.heads = ValuePolicyHeads(nn.Identity(), nn.Identity(), hidden, head_hidden, value_bins,
                                      policy_width, norm)

    def forward(self, latent: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """See class docstring."""
        return self.heads(self.trunk(latent))


def build_mlp_modules(cfg: ModelConfig, spec, policy_width: int, representation: nn.Module = None) -> dict:
    """The MLP family's modules for a resolved config and a vector EnvSpec (same keys as the conv family).

    ``representation`` replaces the MLP representation (the conv family's ``pixel_latent=vector`` passes its
    conv encoder); the spec's observations then need not be vectors.
    """
    if representation is None:
        (obs_dim,) = spec.obs_shape
        representation = MLPRepresentation(obs_dim, cfg.mlp_hidden, cfg.latent_dim, cfg.blocks, cfg.norm,
                                           obs_symlog=bool(cfg.obs_symlog),
                                           obs_running_norm=bool(cfg.obs_running_norm))
    encoder = ActionEncoder(spec.action_type, spec.num_actions, cfg.action_embedding, discrete_scalar=False)
    lstm = cfg.lstm_hidden if cfg.use_value_prefix else 0
    return dict(
        representation=representation,
        dynamics=MLPDynamics(cfg.latent_dim, encoder.out_features, cfg.mlp_hidden, cfg.blocks, cfg.norm),
        prediction=MLPPrediction(cfg.latent_dim, cfg.mlp_hidden, cfg.blocks, cfg.head_hidden,
                                 cfg.value_support_bins, policy_width, cfg.norm),
        reward_head=RewardHead(nn.Identity(), cfg.latent_dim, lstm, cfg.head_hidden, cfg.reward_support_bins,
                               cfg.norm),
        action_encoder=encoder,
        latent_shape=(cfg.latent_dim,),
    )
