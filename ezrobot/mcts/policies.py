"""Search entry points: one per variant, and the generic :func:`search` dispatcher.

* :func:`puct_search` - EfficientZero pUCT, discrete actions.
* :func:`sampled_puct_search` - Sampled MuZero pUCT, continuous actions.
* :func:`gumbel_search` - Gumbel MuZero (sequential halving, completed Q), discrete actions.
* :func:`sampled_gumbel_search` - EZ-V2 sampled Gumbel search, continuous actions.

``recurrent_fn(parent_slots int64[B], actions int64[B] | float32[B, D], child_slots int64[B],
reset bool[B]) -> RecurrentOutput``: slot = node index (root 0, simulation s creates node s + 1). The
arrays it receives are reused by the engine, so it must not keep references to them after returning.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from ezrobot.mcts.config import SearchConfig
from ezrobot.mcts.gumbel import considered_visits
from ezrobot.mcts.engine import finalize, init_roots, run_simulations
from ezrobot.mcts.tree import get_buffers
from ezrobot.mcts.types import RecurrentOutput, RootInput, SearchOutput

RecurrentFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], RecurrentOutput]


@functools.lru_cache(maxsize=32)
def _slot_table(num_simulations: int, batch: int) -> np.ndarray:
    """Read-only ``[N, B]`` int64 table: row s holds the child slot s + 1 of every tree."""
    table = np.repeat(np.arange(1, num_simulations + 1, dtype=np.int64)[:, None], batch, axis=1)
    table.setflags(write=False)
    return table


def _params(cfg: SearchConfig, root: RootInput, gumbel: bool, continuous: bool, k_interior: int,
            seed: int, pf: np.ndarray, pi: np.ndarray) -> None:
    """Write the kernel's float and integer parameters (``engine.F_*``, ``engine.P_*``) into ``pf``, ``pi``."""
    pf[:] = (root.discount, cfg.pb_c_base, cfg.pb_c_init, cfg.min_max_floor, cfg.c_visit, cfg.c_scale,
             float(cfg.q_normalization == "node"))
    pi[:] = (int(gumbel), int(continuous), int(root.use_value_prefix), cfg.value_prefix_horizon,
             cfg.depth_bound, k_interior, seed)


def _check(root: RootInput, cfg: SearchConfig, continuous: bool, temperature: float) -> None:
    cfg.validate()
    root.validate()
    if bool(root.continuous) != continuous:
        kind = "continuous" if root.continuous else "discrete"
        raise ValueError(f"this entry point needs a {'continuous' if continuous else 'discrete'} root, "
                         f"got a {kind} one; use mcts.search() to dispatch")
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} must be > 0")


def _run(root: RootInput, recurrent_fn: RecurrentFn, cfg: SearchConfig, rng: np.random.Generator, train: bool,
         temperature: float, gumbel: bool, continuous: bool) -> SearchOutput:
    _check(root, cfg, continuous, temperature)
    value = np.ascontiguousarray(root.value, dtype=np.float32)
    policy = np.ascontiguousarray(root.policy, dtype=np.float32)
    batch, n = value.shape[0], cfg.num_simulations
    dims = policy.shape[1] // 2 if continuous else 0
    if continuous:
        k_root = cfg.num_sampled_actions
        k_interior = cfg.num_sampled_actions_interior if gumbel else k_root
        widened = cfg.widened_count() if train else 0
    else:
        k_root = k_interior = policy.shape[1]
        widened = 0
    width = max(k_root, k_interior)
    bufs = get_buffers(batch, n + 1, width, dims, cfg.depth_bound + 1)
    eps_root = (rng.standard_normal((batch, k_root, dims), dtype=np.float32) if continuous
                else np.zeros((batch, 1, 1), np.float32))
    if continuous and not train and cfg.eval_mean_action:
        eps_root[:, 0] = 0.0
    frac = cfg.root_exploration_fraction if (train and not gumbel) else 0.0
    noise = bufs.gumbel
    noise[:] = 0.0
    if frac > 0:
        noise[:, :k_root] = rng.dirichlet(np.full(k_root, cfg.dirichlet_alpha), size=batch)
    if gumbel and train and (cfg.sampled_gumbel_noise or not continuous):
        noise[:, :k_root] = rng.gumbel(size=(batch, k_root))
    seed = int(rng.integers(0, 2 ** 62))
    _params(cfg, root, gumbel, continuous, k_interior, seed, bufs.pf, bufs.pi)
    importance = not gumbel or cfg.sampled_gumbel_importance
    init_roots(value, policy, eps_root, noise, frac, widened, float(cfg.widen_std_scale), importance, k_root,
               continuous, bufs.nodes_f, bufs.nodes_i, bufs.child_index, bufs.child_f, bufs.child_action,
               bufs.rows_f, bufs.rows_i)
    bufs.table[:] = considered_visits(min(cfg.gumbel_top_m, k_root), n) if gumbel else 0
    run_simulations(bufs, policy, recurrent_fn, n, continuous, _slot_table(n, batch), rng)
    uniforms = rng.random(batch) if (train and not gumbel) else np.zeros(batch)
    return _outputs(bufs, n, train, temperature, uniforms, batch, k_root, continuous)


def _outputs(bufs, n, train, temperature, uniforms, batch, k_root, continuous):
    visits = np.zeros((batch, k_root), np.int32)
    policy = np.zeros((batch, k_root), np.float64)
    q = np.zeros((batch, k_root), np.float64)
    prior = np.zeros((batch, k_root), np.float64)
    index = np.zeros(batch, np.int64)
    values = np.zeros((batch, 2), np.float64)
    depth = np.zeros((batch, 2), np.float64)
    finalize(bufs.nodes_f, bufs.nodes_i, bufs.child_index, bufs.child_f, bufs.rows_f, bufs.rows_i, bufs.gumbel,
             bufs.pf, bufs.pi, n, bool(train), float(temperature), uniforms, bufs.scratch_f, visits, policy, q, prior,
             index, values, depth)
    sampled = bufs.child_action[:, 0, :k_root].copy() if continuous else None
    action = sampled[np.arange(batch), index] if continuous else index.copy()
    return SearchOutput(action=action, action_index=index, visit_counts=visits, policy=policy.astype(np.float32),
                        root_value=values[:, 0].astype(np.float32), sve_value=values[:, 1].astype(np.float32),
                        q_values=q.astype(np.float32), sampled_actions=sampled, prior=prior.astype(np.float32),
                        max_depth=depth[:, 0].astype(np.int32), mean_depth=depth[:, 1].astype(np.float32))


def puct_search(root: RootInput, recurrent_fn: RecurrentFn, cfg: SearchConfig, rng: np.random.Generator, *,
                train: bool, temperature: float = 1.0) -> SearchOutput:
    """EfficientZero pUCT search over discrete actions.

    Args:
        root: Root values ``[B]`` and logits ``[B, A]``.
        recurrent_fn: The batched model step (see the module docstring).
        cfg: Search settings.
        rng: The only source of randomness.
        train: Root Dirichlet noise and visit-count sampling (else no noise and argmax visits).
        temperature: Self-play visit temperature (training only).
    """
    return _run(root, recurrent_fn, cfg, rng, train, temperature, gumbel=False, continuous=False)


def sampled_puct_search(root: RootInput, recurrent_fn: RecurrentFn, cfg: SearchConfig, rng: np.random.Generator,
                        *, train: bool, temperature: float = 1.0) -> SearchOutput:
    """Sampled MuZero pUCT search: K actions per expanded node from its squashed Gaussian.

    Args: as :func:`puct_search`, with ``root.policy`` the ``[B, 2D]`` Gaussian head. Training widens the
    root proposal (``num_sampled_actions_widened``) and adds Dirichlet noise over the K root samples.
    """
    return _run(root, recurrent_fn, cfg, rng, train, temperature, gumbel=False, continuous=True)


def gumbel_search(root: RootInput, recurrent_fn: RecurrentFn, cfg: SearchConfig, rng: np.random.Generator, *,
                  train: bool, temperature: float = 1.0) -> SearchOutput:
    """Gumbel MuZero search over discrete actions (top-m, sequential halving, improved policy target).

    Args: as :func:`puct_search`; training draws the root Gumbel noise (evaluation uses none), and the
    temperature is not used (the action is the top of sequential halving).
    """
    return _run(root, recurrent_fn, cfg, rng, train, temperature, gumbel=True, continuous=False)


def sampled_gumbel_search(root: RootInput, recurrent_fn: RecurrentFn, cfg: SearchConfig,
                          rng: np.random.Generator, *, train: bool, temperature: float = 1.0) -> SearchOutput:
    """EZ-V2 sampled Gumbel search: K root samples (widened during training), K_interior per interior node.

    Args: as :func:`gumbel_search`, with ``root.policy`` the ``[B, 2D]`` Gaussian head. Training draws
    root Gumbel noise only with ``cfg.sampled_gumbel_noise``; otherwise the action is the survivor of
    sequential halving with the best completed Q.
    """
    return _run(root, recurrent_fn, cfg, rng, train, temperature, gumbel=True, continuous=True)


def search(root: RootInput, recurrent_fn: RecurrentFn, cfg: SearchConfig, rng: np.random.Generator, *,
           train: bool, temperature: float = 1.0) -> SearchOutput:
    """Dispatch on ``cfg.variant`` and ``root.continuous`` to the matching entry point."""
    if cfg.variant == "puct":
        fn = sampled_puct_search if root.continuous else puct_search
    elif cfg.variant == "gumbel":
        fn = sampled_gumbel_search if root.continuous else gumbel_search
    else:
        raise ValueError(f"SearchConfig.variant={cfg.variant!r} is not allowed; choose puct or gumbel")
    return fn(root, recurrent_fn, cfg, rng, train=train, temperature=temperature)
