"""Latent slot pool on the model's device and :class:`RecurrentModel`, the engine's ``recurrent_fn`` over it.

Slot = tree node index: slot 0 holds the roots' latents, simulation s writes slot s + 1. The pool keeps
torch tensors ``latents [B, N+1, *L]`` and, with a value-prefix LSTM, ``h`` and ``c [B, N+1, H]``, allocated
once per (B, N, L, H, device, dtype) and reused by later searches. Only the scalar outputs (value, value
prefix, policy) travel to the CPU; latents never leave the device.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch

from ezrobot.mcts.types import RecurrentOutput

LstmState = Optional[Tuple[torch.Tensor, torch.Tensor]]
StepFn = Callable[[torch.Tensor, LstmState, torch.Tensor],
                  Tuple[torch.Tensor, LstmState, torch.Tensor, torch.Tensor, torch.Tensor]]


class LatentPool:
    """Preallocated latent (and LSTM state) slots for B trees of N + 1 nodes."""

    def __init__(self):
        self._key = None
        self.latents: Optional[torch.Tensor] = None
        self.h: Optional[torch.Tensor] = None
        self.c: Optional[torch.Tensor] = None
        self.rows: Optional[torch.Tensor] = None

    def allocate(self, batch: int, num_slots: int, latent_shape: Sequence[int], lstm_hidden: Optional[int],
                 device, dtype=torch.float32) -> None:
        """Make sure the pool has this shape (reallocating only when it changes).

        Args:
            batch: B.
            num_slots: N + 1.
            latent_shape: L.
            lstm_hidden: H, or None without a value-prefix LSTM.
            device: The model's device.
            dtype: Latent dtype.

        Raises:
            ValueError: for a non-positive size.
        """
        if batch < 1 or num_slots < 2 or any(int(s) < 1 for s in latent_shape):
            raise ValueError(f"LatentPool needs batch >= 1, num_slots >= 2 and positive latent dims; got "
                             f"batch={batch}, num_slots={num_slots}, latent_shape={tuple(latent_shape)}")
        if lstm_hidden is not None and lstm_hidden < 1:
            raise ValueError(f"lstm_hidden={lstm_hidden!r} must be >= 1 or None")
        device = torch.device(device)
        key = (batch, num_slots, tuple(int(s) for s in latent_shape), lstm_hidden, device, dtype)
        if key == self._key:
            return
        self.latents = torch.zeros((batch, num_slots, *key[2]), device=device, dtype=dtype)
        if lstm_hidden is None:
            self.h = self.c = None
        else:
            self.h = torch.zeros((batch, num_slots, lstm_hidden), device=device, dtype=torch.float32)
            self.c = torch.zeros_like(self.h)
        self.rows = torch.arange(batch, device=device)
        self._key = key

    def set_root(self, latent: torch.Tensor, lstm: LstmState = None) -> None:
        """Write the roots into slot 0.

        Args:
            latent: ``[B, *L]`` root latents.
            lstm: ``(h, c)`` each ``[1, B, H]``, or None (zeros are written when the pool has an LSTM).

        Raises:
            RuntimeError: if the pool was not allocated; ValueError: on a shape mismatch.
        """
        if self.latents is None:
            raise RuntimeError("LatentPool.set_root called before allocate()")
        if tuple(latent.shape) != (self.latents.shape[0], *self.latents.shape[2:]):
            raise ValueError(f"root latent shape {tuple(latent.shape)} does not match the pool "
                             f"{(self.latents.shape[0], *self.latents.shape[2:])}")
        self.latents[:, 0] = latent.to(self.latents.dtype)
        if self.h is not None:
            if lstm is None:
                self.h[:, 0].zero_()
                self.c[:, 0].zero_()
            else:
                self.h[:, 0] = lstm[0][0]
                self.c[:, 0] = lstm[1][0]


class RecurrentModel:
    """The engine's ``recurrent_fn`` over a latent pool: ``model(parent_slots, actions, child_slots, reset)``
    gathers the parents' latents (and LSTM states), runs ``step_fn`` once, writes the children into their
    slots (LSTM state zeroed where ``reset``) and returns numpy float32 outputs.

    Args:
        pool: An allocated pool whose slot 0 holds the roots.
        step_fn: ``(latent [B, *L], lstm (h, c) each [1, B, H] or None, actions) -> (next_latent,
            next_lstm, value [B], value_prefix [B], policy [B, P])`` in torch, scalars already decoded.
        continuous: Whether actions are float ``[B, D]`` (else int64 ``[B]``).
    """

    def __init__(self, pool: LatentPool, step_fn: StepFn, *, continuous: bool):
        self.pool, self.step_fn, self.continuous = pool, step_fn, continuous

    def __call__(self, parent_slots: np.ndarray, actions: np.ndarray, child_slots: np.ndarray,
                 reset: np.ndarray) -> RecurrentOutput:
        """One batched model step for the B new children (see the class docstring)."""
        pool = self.pool
        device = pool.latents.device
        rows = pool.rows
        parents = torch.from_numpy(np.array(parent_slots, np.int64)).to(device)
        children = torch.from_numpy(np.array(child_slots, np.int64)).to(device)
        act = torch.from_numpy(np.array(actions, np.float32 if self.continuous else np.int64)).to(device)
        lstm = None
        if pool.h is not None:
            lstm = (pool.h[rows, parents].unsqueeze(0), pool.c[rows, parents].unsqueeze(0))
        with torch.no_grad():
            latent, next_lstm, value, value_prefix, policy = self.step_fn(pool.latents[rows, parents], lstm, act)
            pool.latents[rows, children] = latent.to(pool.latents.dtype)
            if pool.h is not None and next_lstm is not None:
                keep = (~torch.from_numpy(np.asarray(reset, np.bool_)).to(device)).unsqueeze(1).float()
                pool.h[rows, children] = next_lstm[0][0].float() * keep
                pool.c[rows, children] = next_lstm[1][0].float() * keep
            out = torch.stack([value.float().reshape(-1), value_prefix.float().reshape(-1)], 0).cpu().numpy()
            pol = policy.float().cpu().numpy()
        return RecurrentOutput(out[0], out[1], pol)
