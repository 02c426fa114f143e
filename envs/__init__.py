"""Environment adapters: ``make_env(task, cfg, seed=, train=) -> (env, EnvSpec)``.

Task ids: ``gym/<id>`` (gymnasium), ``atari/<Game>`` (ale-py), ``dmc/<domain>-<task>`` (dm_control
suite), a registered task name (``ezrobot.tasks`` registry, no prefix) or a task file ``path/to/file.py``.
Suite modules are imported lazily, and for MuJoCo suites only after :mod:`envs.rendering` has chosen
``MUJOCO_GL``.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Tuple

from .spec import Env, EnvConfig, EnvError, EnvSpec

__all__ = ["Env", "EnvConfig", "EnvError", "EnvSpec", "make_env", "SUITE_PREFIXES"]

SUITE_PREFIXES = ("gym", "atari", "dmc")
"""Task-id prefixes handled by suite adapters; ids without a prefix are registered tasks."""
TASK_DISCOUNT = 0.99
"""Discount per agent step for registered (reward-shaped) tasks."""


def make_env(task: str, cfg: EnvConfig, *, seed: int, train: bool) -> Tuple[Env, EnvSpec]:
    """Builds one environment and its spec.

    Args:
        task: Task id with suite prefix (``gym/CartPole-v1``, ``atari/Pong``, ``dmc/cartpole-swingup``),
            a registered task name, or a path ending in ``.py``.
        cfg: Environment options.
        seed: Seed of the first ``reset()`` (and of the task's construction).
        train: Training (reward clipping, episodic life, training caps) or evaluation behaviour.

    Returns:
        ``(env, spec)``; ``env`` follows the API in ``envs/spec.py`` and ``env.spec is spec``.

    Raises:
        EnvError: Unknown id (with close matches), bad options, or a missing renderer for pixels.
    """
    discount = float(cfg.discount)
    if not (discount == 0.0 or 0.0 < discount <= 1.0):
        raise EnvError(f"env.discount={cfg.discount!r} is not allowed; use a value in (0, 1], or 0 for the "
                       "suite's default")
    env, spec = _make(task, cfg, seed=seed, train=train)
    if discount > 0.0 and discount != spec.discount:
        spec = dataclasses.replace(spec, discount=discount)
        env.spec = spec
    return env, spec


def _make(task: str, cfg: EnvConfig, *, seed: int, train: bool) -> Tuple[Any, EnvSpec]:
    """:func:`make_env` without the discount override."""
    if not isinstance(task, str) or not task.strip():
        raise EnvError(f"task id {task!r} is empty; use gym/<id>, atari/<Game>, dmc/<domain>-<task>, "
                       "a registered task name or a task file path ending in .py")
    task = task.strip()
    if task.endswith(".py"):
        return _make_registered(task, cfg, seed=seed)
    prefix, sep, rest = task.partition("/")
    if not sep:
        return _make_registered(task, cfg, seed=seed)
    if not rest:
        raise EnvError(f"task id {task!r} has nothing after {prefix + '/'!r}")
    if prefix in ("gym", "atari") and cfg.action_planes:
        raise EnvError(f"env.action_planes=true is not supported for {task!r}; it is for dmc/ and registered "
                       "tasks with pixel observations (set env.action_planes=false)")
    if prefix == "gym":
        from .gym import make_gym

        return make_gym(rest, cfg, seed=seed, train=train)
    if prefix == "atari":
        from .atari import make_atari

        return make_atari(rest, cfg, seed=seed, train=train)
    if prefix == "dmc":
        from .rendering import select_backend

        select_backend(cfg.mujoco_gl, strict=cfg.obs_type == "pixels")
        from .dmcontrol import make_dmc

        return make_dmc(rest, cfg, seed=seed, train=train)
    raise EnvError(f"task id {task!r} has unknown prefix {prefix!r}; allowed prefixes: "
                   f"{', '.join(p + '/' for p in SUITE_PREFIXES)}, or no prefix for a registered task, "
                   "or a path ending in .py")


def _make_registered(name: str, cfg: EnvConfig, *, seed: int) -> Tuple[Any, EnvSpec]:
    """Loads a reward-shaped task via ``ezrobot.tasks.load`` and wraps it with the dm_control adapter."""
    from .rendering import select_backend

    select_backend(cfg.mujoco_gl, strict=cfg.obs_type == "pixels")
    try:
        tasks = importlib.import_module("ezrobot.tasks")
    except ImportError as exc:
        raise EnvError(f"task {name!r} needs the ezrobot.tasks package, which failed to import: {exc}") from exc
    load = getattr(tasks, "load", None)
    if load is None:
        raise EnvError(f"task {name!r}: ezrobot.tasks has no load() (task registry not available); "
                       "use gym/<id>, atari/<Game> or dmc/<domain>-<task>")
    try:
        env = load(name, seed=seed, **dict(cfg.gym_kwargs))
    except EnvError:
        raise
    except (KeyError, ValueError, FileNotFoundError) as exc:  # unknown name, bad kwargs, missing file
        raise EnvError(f"task {name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
    from .dmcontrol import parse_camera, wrap_control_env

    task = env.task
    repeat = int(getattr(task, "default_action_repeat", 0) or 2)
    camera = getattr(task, "default_camera", "") or 0
    return wrap_control_env(env, name, cfg, seed=seed, default_repeat=(repeat, repeat),
                            default_camera=parse_camera(camera), discount=TASK_DISCOUNT,
                            physics_states=bool(getattr(task, "supports_relabel", False)))
