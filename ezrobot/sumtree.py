"""Binary sum tree over N non-negative leaf weights (numba kernels) and the prioritized sampler built on it.

Layout: one float64 array ``tree`` of length ``2 * size`` with ``size`` the next power of two >= N; leaf i
lives at ``tree[size + i]`` and every internal node j holds ``tree[2j] + tree[2j + 1]`` (root at index 1).
Parents are recomputed from their children on each update (never adjusted by deltas), so the sums carry
no accumulated drift and a node is positive exactly when one of its leaves is.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _set_leaves(tree: np.ndarray, size: int, idx: np.ndarray, values: np.ndarray) -> None:
    """Write ``values[j]`` into leaf ``idx[j]`` in order (the last write wins) and refresh the ancestors."""
    for j in range(idx.shape[0]):
        i = idx[j] + size
        tree[i] = values[j]
        i //= 2
        while i >= 1:
            tree[i] = tree[2 * i] + tree[2 * i + 1]
            i //= 2


@numba.njit(cache=True)
def _find_prefix(tree: np.ndarray, size: int, u: np.ndarray) -> np.ndarray:
    """Leaf index whose cumulative-sum interval holds each ``u[j]`` in ``[0, total)``.

    A zero-weight subtree is never entered, so rounding cannot return a leaf of weight 0 while the total
    is positive.
    """
    out = np.empty(u.shape[0], np.int64)
    for j in range(u.shape[0]):
        x = u[j]
        i = 1
        while i < size:
            left = tree[2 * i]
            right = tree[2 * i + 1]
            if (x < left and left > 0.0) or right <= 0.0:
                i = 2 * i
            else:
                x -= left
                i = 2 * i + 1
        out[j] = i - size
    return out


class SumTree:
    """Proportional sampling structure over ``capacity`` leaves, all starting at weight 0.

    Args:
        capacity: Number of leaves N (> 0).
    """

    def __init__(self, capacity: int):
        if int(capacity) < 1:
            raise ValueError(f"SumTree capacity={capacity!r} must be >= 1")
        self.capacity = int(capacity)
        self.size = 1 << max(0, (self.capacity - 1).bit_length())
        self.tree = np.zeros(2 * self.size, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all leaf weights."""
        return float(self.tree[1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the tree array."""
        return int(self.tree.nbytes)

    def leaves(self, idx: np.ndarray) -> np.ndarray:
        """Leaf weights ``[B]`` (float64) of leaf indices ``idx [B]``."""
        return self.tree[self.size + np.asarray(idx, dtype=np.int64)]

    def set(self, idx: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``idx [B]`` to ``values [B]`` (finite, >= 0); with repeated indices the last one wins."""
        idx = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
        values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        if idx.shape != values.shape:
            raise ValueError(f"SumTree.set got {idx.shape[0]} indices but {values.shape[0]} values")
        if idx.size == 0:
            return
        if idx.min() < 0 or idx.max() >= self.capacity:
            raise IndexError(f"SumTree leaf index out of range [0, {self.capacity}): {idx.min()}..{idx.max()}")
        if not np.all(np.isfinite(values)) or values.min() < 0:
            raise ValueError("SumTree weights must be finite and >= 0")
        _set_leaves(self.tree, self.size, idx, values)

    def set_all(self, values: np.ndarray) -> None:
        """Replace every leaf with ``values [capacity]`` and rebuild the internal sums level by level."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.capacity,):
            raise ValueError(f"SumTree.set_all needs shape ({self.capacity},), got {values.shape}")
        self.tree[:] = 0.0
        self.tree[self.size:self.size + self.capacity] = values
        width = self.size // 2
        while width >= 1:
            self.tree[width:2 * width] = self.tree[2 * width:4 * width:2] + self.tree[2 * width + 1:4 * width:2]
            width //= 2

    def find(self, u: np.ndarray) -> np.ndarray:
        """Leaf indices ``int64 [B]`` whose cumulative interval contains ``u [B]`` (values in [0, total))."""
        return _find_prefix(self.tree, self.size, np.ascontiguousarray(u, dtype=np.float64).reshape(-1))

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``batch_size`` leaves i.i.d. with probability ``w_i / total``.

        Raises:
            ValueError: when every weight is zero.
        """
        total = self.total
        if not total > 0.0:
            raise ValueError("SumTree.sample: all weights are zero (nothing to sample)")
        return self.find(rng.random(int(batch_size)) * total)


class PrioritizedSampler:
    """Which of N slots are sampleable, their priorities, and proportional sampling with importance weights.

    Slots enter at the current maximum priority of the sampleable set (1.0 while it is empty). Prioritized:
    P(i) = p_i^α / Σ_j p_j^α; weights w_i = (N_s·P(i))^-β / max over the batch (N_s sampleable slots; the
    batch normalisation of EfficientZero's code). Uniform (``prioritized=False``): every sampleable slot
    has weight 1 in the tree and unit importance weights.

    Args:
        capacity: N slots.
        alpha: Priority exponent α >= 0.
        prioritized: Sample by priority (True) or uniformly (False).
        priority_eps: Smallest stored priority (> 0).
    """

    def __init__(self, capacity: int, alpha: float, prioritized: bool, priority_eps: float):
        self.alpha, self.prioritized, self.priority_eps = float(alpha), bool(prioritized), float(priority_eps)
        self.tree = SumTree(capacity)
        self.sampleable = np.zeros(self.tree.capacity, bool)
        self.priority = np.zeros(self.tree.capacity, np.float64)
        self.max_priority, self.max_dirty = 1.0, False

    @property
    def count(self) -> int:
        """Number of sampleable slots."""
        return int(np.count_nonzero(self.sampleable))

    @property
    def nbytes(self) -> int:
        """Bytes held by the tree and the per-slot arrays."""
        return self.tree.nbytes + self.sampleable.nbytes + self.priority.nbytes

    def _leaf(self, priority: np.ndarray) -> np.ndarray:
        return priority ** self.alpha if self.prioritized else np.ones_like(priority)

    def current_max(self) -> float:
        """Largest priority among sampleable slots (1.0 when none)."""
        if self.max_dirty:
            live = self.priority[self.sampleable]
            self.max_priority, self.max_dirty = (float(live.max()) if live.size else 1.0), False
        return self.max_priority

    def add(self, slots: np.ndarray) -> None:
        """Make distinct, currently unsampleable ``slots [M]`` sampleable at the current max priority."""
        if slots.size == 0:
            return
        top = self.current_max()
        self.sampleable[slots], self.priority[slots] = True, top
        self.tree.set(slots, self._leaf(np.full(slots.size, top)))

    def remove(self, slots: np.ndarray) -> None:
        """Make ``slots [M]`` unsampleable (those already unsampleable are ignored)."""
        slots = slots[self.sampleable[slots]]
        if slots.size:
            self.max_dirty |= bool(self.priority[slots].max() >= self.max_priority)
            self.sampleable[slots], self.priority[slots] = False, 0.0
            self.tree.set(slots, np.zeros(slots.size))

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator):
        """``(slots int64 [B], weights float32 [B])`` drawn i.i.d. with replacement."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size={batch_size!r} must be >= 1")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta={beta!r} must be in [0, 1]")
        count = self.count
        if count == 0:
            raise RuntimeError("sample: no sampleable positions yet (collect more transitions first)")
        slots = self.tree.sample(int(batch_size), rng)
        if not self.prioritized:
            return slots, np.ones(slots.size, np.float32)
        weights = (count * self.tree.leaves(slots) / self.tree.total) ** (-float(beta))
        return slots, (weights / weights.max()).astype(np.float32)

    def update(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        """Set priorities ``[B]`` (finite, >= 0, raised to ``priority_eps``) of ``slots [B]``; slots that are
        no longer sampleable are skipped; with repeated slots the last priority wins."""
        pr = np.asarray(priorities, dtype=np.float64).reshape(-1)
        if pr.shape != slots.shape:
            raise ValueError(f"priorities has shape {pr.shape}; expected {slots.shape} (one per position)")
        if not np.all(np.isfinite(pr)) or np.any(pr < 0):
            raise ValueError(f"priorities must be finite and >= 0; got min {pr.min()!r}, max {pr.max()!r}")
        _, first_of_reversed = np.unique(slots[::-1], return_index=True)
        last = slots.size - 1 - first_of_reversed  # the last occurrence of each slot
        keep = last[self.sampleable[slots[last]]]
        slots, pr = slots[keep], np.maximum(pr[keep], self.priority_eps)
        if slots.size == 0:
            return
        self.max_dirty |= bool(self.priority[slots].max() >= self.max_priority and pr.max() < self.max_priority)
        self.priority[slots] = pr
        self.max_priority = max(self.max_priority, float(pr.max()))
        self.tree.set(slots, self._leaf(pr))

    def state_dict(self) -> dict:
        """Arrays and scalars that restore this sampler (the tree is rebuilt from them)."""
        return {"sampleable": self.sampleable.copy(), "priority": self.priority.copy(),
                "max_priority": self.max_priority, "max_dirty": self.max_dirty}

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()`` output and rebuild the tree."""
        for name in ("sampleable", "priority"):
            arr = np.asarray(state[name])
            if arr.shape != getattr(self, name).shape:
                raise ValueError(f"replay state {name!r} has shape {arr.shape}; expected {getattr(self, name).shape}")
            getattr(self, name)[...] = arr
        self.max_priority, self.max_dirty = float(state["max_priority"]), bool(state["max_dirty"])
        self.tree.set_all(np.where(self.sampleable, self._leaf(self.priority), 0.0))
