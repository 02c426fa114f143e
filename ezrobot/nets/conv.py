"""EfficientZero conv family for uint8 image observations (docs/REFERENCES.md §1).

Representation (downsample on, 96 px): conv3x3 s2 (C_in -> c/2) + norm + ReLU, residual block (c/2),
residual block c/2 -> c stride 2, residual block (c), avg-pool 3 s2, residual block (c), avg-pool 3 s2
(-> c x 6 x 6), then ``blocks`` residual blocks. Downsample off: conv3x3 s1 (C_in -> c) + norm + ReLU, then
``blocks`` residual blocks at full resolution.

Dynamics: the action as planes concatenated to the state, conv3x3 (c + planes -> c) + norm, residual add of
the input state, ReLU, ``blocks`` residual blocks.

Vector latent (``model.pixel_latent=vector``): the representation's feature map is flattened and mapped by
the MLP family's representation to a ``latent_dim`` vector; dynamics, reward and prediction are the MLP
family's (as in pixel agents that plan in a vector latent, e.g. TD-MPC2 and DreamerV3).

Prediction: ``blocks`` residual blocks, then 1x1 convs to ``reduced_channels`` (norm, ReLU, flatten) feeding
the value MLP and the policy MLP. Value prefix: 1x1 conv -> norm -> ReLU -> flatten -> LSTM -> norm -> ReLU
-> MLP.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ezrobot.nets.blocks import ResidualBlock, conv3x3, make_norm
from ezrobot.nets.config import ModelConfig
from ezrobot.nets.heads import ActionEncoder, RewardHead, ValuePolicyHeads
from ezrobot.nets.mlp import MLPRepresentation, build_mlp_modules


def _halve(size: int) -> int:
    """Output size of a kernel-3, stride-2, padding-1 conv or pool."""
    return (size - 1) // 2 + 1


def conv_latent_shape(frame_hw: Tuple[int, int], channels: int, downsample: bool) -> Tuple[int, int, int]:
    """Latent shape ``(c, h, w)`` for input images of size ``frame_hw``."""
    h, w = frame_hw
    if downsample:
        for _ in range(4):  # stem, downsample block, two pools
            h, w = _halve(h), _halve(w)
    return channels, h, w


class ConvRepresentation(nn.Module):
    """Images ``[B, C_in, H, W]`` (float, scaled to [0, 1]) -> latent ``[B, c, h, w]`` (unnormalised)."""

    def __init__(self, in_channels: int, channels: int, blocks: int, downsample: bool, norm: str):
        super().__init__()
        if downsample:
            half = channels // 2
            layers = [conv3x3(in_channels, half, stride=2), make_norm(norm, half, True), nn.ReLU(),
                      ResidualBlock(half, half, norm), ResidualBlock(half, channels, norm, stride=2),
                      ResidualBlock(channels, channels, norm), nn.AvgPool2d(3, stride=2, padding=1),
                      ResidualBlock(channels, channels, norm), nn.AvgPool2d(3, stride=2, padding=1)]
        else:
            layers = [conv3x3(in_channels, channels), make_norm(norm, channels, True), nn.ReLU()]
        layers += [ResidualBlock(channels, channels, norm) for _ in range(blocks)]
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W] -> [B, c, h, w]``."""
        return self.net(obs)


class ConvDynamics(nn.Module):
    """(latent ``[B, c, h, w]``, action features ``[B, F]``) -> next latent ``[B, c, h, w]`` (unnormalised).

    The F action features are broadcast to F constant planes.
    """

    def __init__(self, channels: int, action_features: int, blocks: int, norm: str):
        super().__init__()
        self.conv = conv3x3(channels + action_features, channels)
        self.norm = make_norm(norm, channels, True)
        self.blocks = nn.Sequential(*[ResidualBlock(channels, channels, norm) for _ in range(blocks)])

    def forward(self, latent: torch.Tensor, action_features: torch.Tensor) -> torch.Tensor:
        """See class docstring."""
        b, _, h, w = latent.shape
        planes = action_features.to(latent.dtype)[:, :, None, None].expand(b, -1, h, w)
        x = torch.cat([latent, planes], dim=1)
        x = torch.relu(self.norm(self.conv(x)) + latent)
        return self.blocks(x)


def _reducer(channels: int, reduced: int, norm: str) -> nn.Sequential:
    """1x1 conv -> norm -> ReLU -> flatten: ``[B, c, h, w] -> [B, reduced * h * w]``."""
    return nn.Sequential(nn.Conv2d(channels, reduced, 1), make_norm(norm, reduced, True), nn.ReLU(),
                         nn.Flatten(1))


class ConvPrediction(nn.Module):
    """Latent ``[B, c, h, w]`` -> (value_logits ``[B, S]``, policy ``[B, A]``)."""

    def __init__(self, latent_shape: Tuple[int, int, int], blocks: int, reduced: int, hidden, value_bins: int,
                 policy_width: int, norm: str):
        super().__init__()
        c, h, w = latent_shape
        self.trunk = nn.Sequential(*[ResidualBlock(c, c, norm) for _ in range(blocks)])
        self.heads = ValuePolicyHeads(_reducer(c, reduced, norm), _reducer(c, reduced, norm), reduced * h * w,
                                      hidden, value_bins, policy_width, norm)

    def forward(self, latent: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """See class docstring."""
        return self.heads(self.trunk(latent))


def build_conv_modules(cfg: ModelConfig, spec, policy_width: int) -> dict:
    """The conv family's modules for a resolved config and an image EnvSpec.

    Returns:
        dict with ``representation``, ``dynamics``, ``prediction``, ``reward_head``, ``action_encoder`` and
        ``latent_shape`` ``(c, h, w)``.
    """
    in_channels, height, width = spec.obs_shape
    latent_shape = conv_latent_shape((height, width), cfg.channels, cfg.downsample)
    c, h, w = latent_shape
    encoder = ActionEncoder(spec.action_type, spec.num_actions, cfg.action_embedding, discrete_scalar=True)
    lstm = cfg.lstm_hidden if cfg.use_value_prefix else 0
    return dict(
        representation=ConvRepresentation(in_channels, cfg.channels, cfg.blocks, cfg.downsample, cfg.norm),
        dynamics=ConvDynamics(cfg.channels, encoder.out_features, cfg.blocks, cfg.norm),
        prediction=ConvPrediction(latent_shape, cfg.blocks, cfg.reduced_channels, cfg.head_hidden,
                                  cfg.value_support_bins, policy_width, cfg.norm),
        reward_head=RewardHead(_reducer(c, cfg.reduced_channels, cfg.norm), cfg.reduced_channels * h * w, lstm,
                               cfg.head_hidden, cfg.reward_support_bins, cfg.norm),
        action_encoder=encoder,
        latent_shape=latent_shape,
    )


def build_conv_vector_modules(cfg: ModelConfig, spec, policy_width: int) -> dict:
    """``pixel_latent=vector``: conv trunk -> flatten -> MLP representation ``[B, latent_dim]``, and the MLP
    family's dynamics, reward head and prediction (same keys as :func:`build_conv_modules`)."""
    in_channels, height, width = spec.obs_shape
    c, h, w = conv_latent_shape((height, width), cfg.channels, cfg.downsample)
    representation = nn.Sequential(
        ConvRepresentation(in_channels, cfg.channels, cfg.blocks, cfg.downsample, cfg.norm), nn.Flatten(1),
        MLPRepresentation(c * h * w, cfg.mlp_hidden, cfg.latent_dim, cfg.blocks, cfg.norm))
    return build_mlp_modules(cfg, spec, policy_width, representation=representation)
