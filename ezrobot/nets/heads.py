"""Heads shared by both families: action encoder, value/policy heads, value-prefix (or reward) head, SimSiam.

Shapes: B batch, S support bins, A policy width (|A| discrete or 2D continuous), F flattened features.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ezrobot.nets.blocks import head_mlp, make_norm

LSTMState = Optional[Tuple[torch.Tensor, torch.Tensor]]


class ActionEncoder(nn.Module):
    """Turns actions into a feature vector ``[B, F]`` for the dynamics network.

    Args:
        action_type: ``discrete`` or ``continuous``.
        num_actions: |A| (discrete) or the action dimension D (continuous).
        embedding: 0 for the raw encoding, else the size of a learned embedding
            (Linear -> LayerNorm -> ReLU).
        discrete_scalar: With ``embedding == 0``, encode a discrete action as the single number a/|A|
            (EfficientZero's constant plane) instead of a one-hot vector.
    """

    def __init__(self, action_type: str, num_actions: int, embedding: int, discrete_scalar: bool):
        super().__init__()
        if action_type not in ("discrete", "continuous"):
            raise ValueError(f"action_type={action_type!r} is unknown; choose discrete or continuous")
        self.discrete = action_type == "discrete"
        self.num_actions = int(num_actions)
        self.one_hot = self.discrete and (embedding > 0 or not discrete_scalar)
        raw = self.num_actions if (self.one_hot or not self.discrete) else 1
        self.embed = None
        if embedding > 0:
            self.embed = nn.Sequential(nn.Linear(raw, embedding), nn.LayerNorm(embedding), nn.ReLU())
        self.out_features = embedding if embedding > 0 else raw

    def forward(self, action: torch.Tensor) -> torch.Tensor:
        """``int64 [B]`` (discrete) or ``float [B, D]`` (continuous) -> ``[B, F]`` float32."""
        if self.discrete:
            if action.dtype.is_floating_point or action.dim() != 1:
                raise ValueError(f"discrete actions must be an integer tensor [B], got {action.dtype} "
                                 f"{tuple(action.shape)}")
            if self.one_hot:
                x = F.one_hot(action.long(), self.num_actions).float()
            else:
                x = action.float().unsqueeze(-1) / self.num_actions
        else:
            if action.dim() != 2 or action.shape[-1] != self.num_actions:
                raise ValueError(f"continuous actions must be float [B, {self.num_actions}], got "
                                 f"{tuple(action.shape)}")
            x = action.float()
        return x if self.embed is None else self.embed(x)


class ValuePolicyHeads(nn.Module):
    """Value logits ``[B, S]`` and policy ``[B, A]`` from a latent, each through its own reducer and MLP.

    Args:
        value_reducer: Module mapping the trunk output to ``[B, F]`` for the value head.
        policy_reducer: Same for the policy head.
        in_features: F.
        hidden: Head MLP hidden sizes.
        value_bins: S.
        policy_width: A.
        norm: Norm of the head MLP hidden layers.
    """

    def __init__(self, value_reducer: nn.Module, policy_reducer: nn.Module, in_features: int,
                 hidden: Sequence[int], value_bins: int, policy_width: int, norm: str):
        super().__init__()
        self.value_reducer = value_reducer
        self.policy_reducer = policy_reducer
        self.value = head_mlp(in_features, hidden, value_bins, norm, zero_init_last=True)
        self.policy = head_mlp(in_features, hidden, policy_width, norm, zero_init_last=True)

    def forward(self, trunk: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Trunk features -> (value_logits ``[B, S]``, policy ``[B, A]``)."""
        return self.value(self.value_reducer(trunk)), self.policy(self.policy_reducer(trunk))


class RewardHead(nn.Module):
    """Value-prefix head (reducer -> LSTM -> norm -> ReLU -> MLP) or, without LSTM, a reward head.

    The LSTM runs in float32 with autocast disabled so that its state stays stable under bf16 autocast.

    Args:
        reducer: Module mapping the (unnormalised) next latent to ``[B, F]``.
        in_features: F.
        lstm_hidden: LSTM hidden size H, or 0 for a plain per-step reward head.
        hidden: Head MLP hidden sizes.
        bins: S.
        norm: Norm after the LSTM and in the head MLP.
    """

    def __init__(self, reducer: nn.Module, in_features: int, lstm_hidden: int, hidden: Sequence[int],
                 bins: int, norm: str):
        super().__init__()
        self.reducer = reducer
        self.lstm_hidden = int(lstm_hidden)
        self.lstm = None
        width = in_features
        if self.lstm_hidden > 0:
            self.lstm = nn.LSTM(in_features, self.lstm_hidden)
            self.lstm_norm = make_norm(norm, self.lstm_hidden, spatial=False)
            width = self.lstm_hidden
        self.mlp = head_mlp(width, hidden, bins, norm, zero_init_last=True)

    def initial_state(self, batch_size: int, device) -> LSTMState:
        """Zero ``(h, c)`` each ``[1, B, H]`` float32, or None without LSTM."""
        if self.lstm is None:
            return None
        zeros = torch.zeros(1, batch_size, self.lstm_hidden, device=device)
        return zeros, zeros.clone()

    def forward(self, next_latent: torch.Tensor, state: LSTMState) -> Tuple[torch.Tensor, LSTMState]:
        """``next_latent [B, *L]``, ``state`` ((h, c) each ``[1, B, H]``, or None = zeros)
        -> (logits ``[B, S]``, next state or None)."""
        x = self.reducer(next_latent)
        if self.lstm is None:
            return self.mlp(x), None
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        with torch.autocast(device_type=x.device.type, enabled=False):
            out, (h, c) = self.lstm(x.float().unsqueeze(0), (state[0].float(), state[1].float()))
        out = torch.relu(self.lstm_norm(out.squeeze(0)))
        return self.mlp(out), (h, c)


class CriticEnsemble(nn.Module):
    """Q(s, a) heads on the latent and a continuous action (SAC, TD-MPC2): each head is an MLP
    ``[F + D] -> hidden -> hidden -> S`` (Linear -> norm -> ReLU per hidden layer, zero-initialised output)
    predicting logits over the value support.

    Args:
        in_features: Flattened latent size F.
        action_dim: D.
        hidden: Width of the two hidden layers.
        bins: S, the value support's atoms.
        heads: Ensemble size.
        norm: ``batch`` | ``layer`` | ``none``.
    """

    def __init__(self, in_features: int, action_dim: int, hidden: int, bins: int, heads: int, norm: str):
        super().__init__()
        self.heads = nn.ModuleList(head_mlp(in_features + action_dim, [hidden, hidden], bins, norm, True)
                                   for _ in range(heads))

    def forward(self, latent: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``latent [B, *L]``, ``action [B, D]`` -> logits ``[heads, B, S]`` (float32)."""
        x = torch.cat([latent.reshape(latent.shape[0], -1), action.to(latent.dtype)], dim=-1)
        return torch.stack([head(x).float() for head in self.heads])


class SimSiamHead(nn.Module):
    """SimSiam projector (in -> P -> P -> P, norm + ReLU between) and predictor (P -> P_h -> P).

    With ``norm="batch"`` (EfficientZero, EZ-V2, SimSiam) the projector's output also goes through a
    BatchNorm1d: it standardises every projection dimension over the batch, so the projections cannot
    collapse to one vector for all observations (a constant satisfies the consistency loss perfectly).
    ``layer`` and ``none`` put their norm between the hidden layers only and have no such guard.

    Args:
        in_features: Flattened latent size (2304 for the 64x6x6 Atari latent).
        projection_dim: P.
        predictor_hidden: P_h.
        norm: ``batch`` (paper) | ``layer`` | ``none``.
    """

    def __init__(self, in_features: int, projection_dim: int, predictor_hidden: int, norm: str):
        super().__init__()
        p = projection_dim
        out_norm = [nn.BatchNorm1d(p)] if norm == "batch" else []
        self.projector = nn.Sequential(
            nn.Linear(in_features, p), make_norm(norm, p, spatial=False), nn.ReLU(),
            nn.Linear(p, p), make_norm(norm, p, spatial=False), nn.ReLU(),
            nn.Linear(p, p), *out_norm)
        self.predictor = nn.Sequential(
            nn.Linear(p, predictor_hidden), make_norm(norm, predictor_hidden, spatial=False), nn.ReLU(),
            nn.Linear(predictor_hidden, p))

    def forward(self, latent: torch.Tensor, with_predictor: bool) -> torch.Tensor:
        """``[B, *L] -> [B, P]``."""
        z = self.projector(latent.reshape(latent.shape[0], -1))
        return self.predictor(z) if with_predictor else z
