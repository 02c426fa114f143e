"""Value transform h, its inverse, and categorical supports with two-hot projection.

docs/REFERENCES.md §1: h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x with eps = 0.001 (the eps x term is outside the sign
product), h^-1(y) = sign(y) (((sqrt(1 + 4 eps (|y| + 1 + eps)) - 1) / (2 eps))^2 - 1). Scalars (values,
value prefixes, rewards) are learned as categorical distributions over a support that is uniform in
h-space: a target x becomes the two-hot projection of h(x); a prediction is h^-1 of the softmax expectation.

This module imports nothing from ezrobot. ``h`` and ``h_inv`` accept torch tensors or numpy arrays;
:class:`DiscreteSupport` works in torch, with numpy twins where they are cheap (used by the search).
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch

EPSILON = 0.001
"""The epsilon of the value transform h."""

Array = Union[torch.Tensor, np.ndarray]


def h(x: Array, eps: float = EPSILON) -> Array:
    """Invertible value transform h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x.

    Args:
        x: Tensor or array of any shape.
        eps: Linear term coefficient.

    Returns:
        Same type and shape as ``x``.
    """
    if isinstance(x, torch.Tensor):
        return torch.sign(x) * (torch.sqrt(torch.abs(x) + 1.0) - 1.0) + eps * x
    x = np.asarray(x)
    return np.sign(x) * (np.sqrt(np.abs(x) + 1.0) - 1.0) + eps * x


def h_inv(y: Array, eps: float = EPSILON) -> Array:
    """Exact inverse of :func:`h`.

    Args:
        y: Tensor or array of any shape (values in h-space).
        eps: Must equal the ``eps`` used by :func:`h`.

    Returns:
        Same type and shape as ``y``.
    """
    if isinstance(y, torch.Tensor):
        root = (torch.sqrt(1.0 + 4.0 * eps * (torch.abs(y) + 1.0 + eps)) - 1.0) / (2.0 * eps)
        return torch.sign(y) * (root * root - 1.0)
    y = np.asarray(y)
    root = (np.sqrt(1.0 + 4.0 * eps * (np.abs(y) + 1.0 + eps)) - 1.0) / (2.0 * eps)
    return np.sign(y) * (root * root - 1.0)


class DiscreteSupport:
    """A categorical support of ``bins`` atoms spaced uniformly over ``[min, max]`` in h-space.

    Args:
        min: Lowest atom (h-space), e.g. -300 for the Atari support.
        max: Highest atom (h-space), e.g. 300.
        bins: Number of atoms (>= 2), e.g. 601.

    Raises:
        ValueError: if ``bins < 2`` or ``max <= min``.
    """

    def __init__(self, min: float, max: float, bins: int):  # noqa: A002 (paper/config vocabulary)
        if int(bins) != bins or bins < 2:
            raise ValueError(f"DiscreteSupport bins={bins!r} must be an integer >= 2")
        if not float(max) > float(min):
            raise ValueError(f"DiscreteSupport needs max > min, got min={min!r}, max={max!r}")
        self.min = float(min)
        self.max = float(max)
        self.bins = int(bins)
        self.delta = (self.max - self.min) / (self.bins - 1)
        self._atoms_np = np.linspace(self.min, self.max, self.bins, dtype=np.float64)
        self._atoms_cache: dict = {}

    def __repr__(self) -> str:
        return f"DiscreteSupport(min={self.min:g}, max={self.max:g}, bins={self.bins})"

    @property
    def size(self) -> int:
        """Number of atoms (alias of ``bins``)."""
        return self.bins

    @property
    def scalar_range(self) -> tuple:
        """``(h^-1(min), h^-1(max))``: the scalar interval the support can represent."""
        return float(h_inv(np.float64(self.min))), float(h_inv(np.float64(self.max)))

    def atoms(self, device: Union[str, torch.device, None] = None) -> torch.Tensor:
        """The atoms as a float32 tensor ``[S]`` on ``device`` (cached per device)."""
        key = torch.device(device) if device is not None else torch.device("cpu")
        if key not in self._atoms_cache:
            self._atoms_cache[key] = torch.tensor(self._atoms_np, dtype=torch.float32, device=key)
        return self._atoms_cache[key]

    def scalar_to_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Two-hot projection of h(x) onto the support.

        The mass is split between the two neighbouring atoms so that the expectation equals h(x) (values
        outside the support are clipped to its ends first).

        Args:
            x: Scalars ``[*B]`` (any float dtype; computed in float32).

        Returns:
            Probabilities ``[*B, S]`` float32.
        """
        y = h(x.float()).clamp(self.min, self.max)
        pos = (y - self.min) / self.delta
        low = pos.floor().clamp(0, self.bins - 1)
        upper_weight = pos - low
        low_idx = low.long()
        high_idx = (low_idx + 1).clamp(max=self.bins - 1)
        probs = torch.zeros(*y.shape, self.bins, dtype=torch.float32, device=y.device)
        probs.scatter_add_(-1, low_idx.unsqueeze(-1), (1.0 - upper_weight).unsqueeze(-1))
        probs.scatter_add_(-1, high_idx.unsqueeze(-1), upper_weight.unsqueeze(-1))
        return probs

    def probs_to_scalar(self, probs: torch.Tensor) -> torch.Tensor:
        """h^-1 of the expectation of ``probs [*B, S]`` over the atoms: ``[*B]`` float32."""
        if probs.shape[-1] != self.bins:
            raise ValueError(f"probs have {probs.shape[-1]} bins, the support has {self.bins}")
        return h_inv((probs.float() * self.atoms(probs.device)).sum(-1))

    def logits_to_scalar(self, logits: torch.Tensor) -> torch.Tensor:
        """h^-1 of the softmax expectation of ``logits [*B, S]``: ``[*B]`` float32."""
        if logits.shape[-1] != self.bins:
            raise ValueError(f"logits have {logits.shape[-1]} bins, the support has {self.bins}")
        return self.probs_to_scalar(torch.softmax(logits.float(), dim=-1))

    def logits_to_scalar_np(self, logits: np.ndarray) -> np.ndarray:
        """Numpy twin of :meth:`logits_to_scalar`: ``[*B, S] -> [*B]`` float32."""
        logits = np.asarray(logits, dtype=np.float64)
        if logits.shape[-1] != self.bins:
            raise ValueError(f"logits have {logits.shape[-1]} bins, the support has {self.bins}")
        z = np.exp(logits - logits.max(axis=-1, keepdims=True))
        expectation = (z * self._atoms_np).sum(-1) / z.sum(-1)
        return h_inv(expectation).astype(np.float32)

    def scalar_to_probs_np(self, x: np.ndarray) -> np.ndarray:
        """Numpy twin of :meth:`scalar_to_probs`: ``[*B] -> [*B, S]`` float32."""
        return self.scalar_to_probs(torch.as_tensor(np.asarray(x, dtype=np.float32))).numpy()


def atari_support() -> DiscreteSupport:
    """The EfficientZero Atari support: 601 atoms over [-300, 300] in h-space (step 1)."""
    return DiscreteSupport(-300.0, 300.0, 601)


def proprio_support(bins: int = 51, max_value: float = 25.0) -> DiscreteSupport:
    """An EZ-V2 style support: ``bins`` atoms spread uniformly over [-max_value, max_value] in h-space.

    The default (51 atoms over +-25) represents scalars up to |x| ~= 642, which covers discounted DMC
    returns (rewards in [0, 1] per simulator step, 1,000 steps per episode) at any action repeat.
    """
    return DiscreteSupport(-max_value, max_value, bins)
