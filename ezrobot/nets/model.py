"""The EfficientZero network (docs/ARCHITECTURE.md "Model contract") and its factory.

Shapes: B batch, S support bins, A policy width (|A| discrete, 2D continuous: mean and pre-softplus std
pre-activations, see ``ezrobot.distributions``), L latent shape (``(c, h, w)`` conv, ``(latent_dim,)`` MLP),
H LSTM hidden size, P projection size.

All outputs that are logits are returned in float32 (also under bf16 autocast) and latents are float32,
min-max normalised per sample unless ``model.latent_norm=none``.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ezrobot.nets.blocks import min_max_normalize
from ezrobot.nets.config import ModelConfig, model_family, resolve_preset
from ezrobot.nets.conv import build_conv_modules, build_conv_vector_modules
from ezrobot.nets.heads import CriticEnsemble, LSTMState, SimSiamHead
from ezrobot.nets.mlp import build_mlp_modules
from ezrobot.transforms import DiscreteSupport

ACTING_MODULES = ("representation", "dynamics", "prediction", "reward_head", "action_encoder")
"""Submodules used by self-play and search (everything but the SimSiam heads)."""


class EfficientZeroNet(nn.Module):
    """Representation, dynamics (+ value prefix or reward), prediction and SimSiam heads.

    Build it with :func:`build_model`.

    Attributes:
        cfg: The resolved :class:`ModelConfig`.
        family: ``conv`` or ``mlp``.
        action_type: ``discrete`` or ``continuous``.
        policy_width: A.
        latent_shape: L.
        value_support: Support of the value logits.
        reward_support: Support of the value-prefix (or reward) logits.
        use_value_prefix: True when the LSTM value-prefix head is used.
    """

    def __init__(self, cfg: ModelConfig, spec, modules: dict, family: str):
        super().__init__()
        self.cfg = cfg
        self.family = family
        self.action_type = spec.action_type
        self.num_actions = spec.num_actions
        self.policy_width = spec.num_actions if spec.action_type == "discrete" else 2 * spec.num_actions
        self.latent_shape = tuple(modules["latent_shape"])
        self.obs_shape = tuple(spec.obs_shape)
        self.value_support = DiscreteSupport(-cfg.value_support_max, cfg.value_support_max,
                                             cfg.value_support_bins)
        self.reward_support = DiscreteSupport(-cfg.reward_support_max, cfg.reward_support_max,
                                              cfg.reward_support_bins)
        self.use_value_prefix = bool(cfg.use_value_prefix)
        self.latent_minmax = cfg.latent_norm == "minmax"
        self.representation = modules["representation"]
        self.dynamics = modules["dynamics"]
        self.prediction = modules["prediction"]
        self.reward_head = modules["reward_head"]
        self.action_encoder = modules["action_encoder"]
        flat_latent = 1
        for size in self.latent_shape:
            flat_latent *= size
        self.simsiam = SimSiamHead(flat_latent, cfg.projection_dim, cfg.predictor_hidden, cfg.projection_norm)
        self.critic = None
        if cfg.critic_heads > 0:
            if spec.action_type != "continuous":
                raise ValueError(f"model.critic_heads={cfg.critic_heads!r} needs continuous actions (got "
                                 f"{spec.action_type} actions); use model.critic_heads=0")
            self.critic = CriticEnsemble(flat_latent, spec.num_actions, cfg.mlp_hidden or 256,
                                         cfg.value_support_bins, cfg.critic_heads, cfg.norm)

    def _prepare_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """uint8 pixels -> float / 255; float inputs are used as given (e.g. augmented views in [0, 1])."""
        if tuple(obs.shape[1:]) != self.obs_shape:
            raise ValueError(f"observations of shape {tuple(obs.shape)} do not match [B, {self.obs_shape}]")
        if obs.dtype == torch.uint8:
            return obs.float().div_(255.0)
        return obs if obs.dtype.is_floating_point else obs.float()

    def _normalize_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """``model.latent_norm``: per-sample min-max to [0, 1] or none; float32 either way."""
        return min_max_normalize(latent) if self.latent_minmax else latent.float()

    def initial_inference(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode observations and predict at the root.

        Args:
            obs: ``[B, *obs_shape]`` uint8 pixels or float vectors (float pixels are taken as scaled).

        Returns:
            (latent ``[B, *L]`` (in [0, 1] with min-max), value_logits ``[B, S]``, policy ``[B, A]``).
        """
        latent = self._normalize_latent(self.representation(self._prepare_obs(obs)))
        value_logits, policy = self.prediction(latent)
        return latent, value_logits.float(), policy.float()

    def recurrent_inference(self, latent: torch.Tensor, action: torch.Tensor, lstm_state: LSTMState
                            ) -> Tuple[torch.Tensor, torch.Tensor, LSTMState, torch.Tensor, torch.Tensor]:
        """One dynamics step and the predictions at the new state.

        Args:
            latent: ``[B, *L]``.
            action: int64 ``[B]`` (discrete) or float ``[B, D]`` (continuous, in [-1, 1]).
            lstm_state: (h, c) each ``[1, B, H]``; None means zeros (value prefix on) or is ignored (off).

        Returns:
            (next_latent ``[B, *L]``, value_prefix_logits ``[B, S_r]`` (reward logits when the value prefix
            is off), next_lstm (or None), value_logits ``[B, S]``, policy ``[B, A]``).
        """
        next_latent = self.dynamics(latent, self.action_encoder(action))
        prefix_logits, next_lstm = self.reward_head(next_latent, lstm_state if self.use_value_prefix else None)
        next_latent = self._normalize_latent(next_latent)
        value_logits, policy = self.prediction(next_latent)
        return next_latent, prefix_logits.float(), next_lstm, value_logits.float(), policy.float()

    def initial_lstm_state(self, batch_size: int, device) -> LSTMState:
        """Zero LSTM state (h, c) each ``[1, B, H]`` float32 on ``device``, or None without value prefix."""
        return self.reward_head.initial_state(batch_size, device)

    def project(self, latent: torch.Tensor, with_predictor: bool) -> torch.Tensor:
        """SimSiam projection ``[B, *L] -> [B, P]`` (followed by the predictor if ``with_predictor``)."""
        return self.simsiam(latent, with_predictor).float()

    def critic_q(self, latent: torch.Tensor, action: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """The critic's Q(s, a) of ``latent [B, *L]`` and ``action [B, D]``: scalars ``[heads, B]``, or the
        support logits ``[heads, B, S]`` with ``logits``. Needs ``model.critic_heads`` > 0."""
        out = self.critic(latent, action)
        return out if logits else self.value_support.logits_to_scalar(out)

    def acting_parameter_count(self) -> int:
        """Parameters used by self-play and search (all but the SimSiam projector/predictor and the critic)."""
        return sum(parameter_count(getattr(self, name)) for name in ACTING_MODULES)


def parameter_count(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def parameter_breakdown(model: EfficientZeroNet) -> Dict[str, int]:
    """Parameters per submodule plus ``acting`` and ``total``."""
    counts = {name: parameter_count(child) for name, child in model.named_children()}
    counts["acting"] = model.acting_parameter_count()
    counts["total"] = parameter_count(model)
    return counts


def build_model(cfg: ModelConfig, spec, device: Optional[torch.device] = None) -> EfficientZeroNet:
    """Build the network for an environment: conv family for uint8 images, MLP family for vectors.

    Args:
        cfg: Model config (resolved here with :func:`resolve_preset`; an OmegaConf node is accepted).
        spec: The environment's ``EnvSpec``.
        device: Optional device to move the model to.

    Raises:
        ValueError: for a bad config, an unsupported observation shape or action type.
    """
    if spec.action_type not in ("discrete", "continuous"):
        raise ValueError(f"spec.action_type={spec.action_type!r} is unknown; expected discrete or continuous")
    if spec.num_actions < 1:
        raise ValueError(f"spec.num_actions={spec.num_actions!r} must be >= 1")
    resolved = resolve_preset(cfg, spec)
    family = model_family(spec)
    policy_width = spec.num_actions if spec.action_type == "discrete" else 2 * spec.num_actions
    if family == "mlp":
        build = build_mlp_modules
    else:
        build = build_conv_vector_modules if resolved.pixel_latent == "vector" else build_conv_modules
    model = EfficientZeroNet(resolved, spec, build(resolved, spec, policy_width), family)
    return model if device is None else model.to(device)
