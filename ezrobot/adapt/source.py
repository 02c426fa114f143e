"""The source run of a fine-tune run (``init_from``): its saved config and newest intact checkpoint, the
compatibility of its observation and action specs with the new task, and the initialisation of the new
run's network (and replay) from it."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional

import torch

from ezrobot.adapt.config import PARTS
from ezrobot.adapt.parts import check_parts, load_parts
from ezrobot.adapt.relabel import copy_episodes, relabelled_rewards
from ezrobot.checkpoint import load_checkpoint, newest_intact
from ezrobot.config import Config, ConfigError
from ezrobot.envs import make_env
from ezrobot.envs.spec import EnvSpec
from ezrobot.hydra_config import from_yaml

NEEDS = {"representation": ("observation",), "dynamics": ("action",), "policy": ("action",), "reward": (),
         "value": ()}
"""Which spec each part's shapes depend on (reward and value read only the latent)."""


@dataclass(frozen=True)
class SourceRun:
    """A trained run to start from.

    Attributes:
        run_dir: Its run directory.
        cfg: Its saved configuration.
        spec: Its environment's spec.
        checkpoint: The newest intact checkpoint (with an intact replay when one is needed).
    """

    run_dir: str
    cfg: Config
    spec: EnvSpec
    checkpoint: str


def read_run_config(run_dir: str, field: str) -> Config:
    """The saved ``config.yaml`` of ``run_dir``; ``field`` names the option that gave it, for the error.

    Raises:
        ConfigError: the directory holds no run.
    """
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise ConfigError(f"{field}={run_dir!r} holds no run (no config.yaml); name the run directory of a "
                          "trained run")
    with open(path) as f:
        return from_yaml(f.read())


def open_source(run_dir: str, with_replay: bool = False) -> SourceRun:
    """Read the source run's config, build its spec and find its newest intact checkpoint.

    Raises:
        ConfigError: the directory holds no trained run.
        CheckpointError: it has no intact checkpoint.
    """
    cfg = read_run_config(run_dir, "init_from")
    env, spec = make_env(cfg.task, cfg.env, seed=cfg.seed, train=False)
    env.close()
    files = ("state.pt", "replay.npz") if with_replay else ("state.pt",)
    return SourceRun(run_dir, cfg, spec, newest_intact(run_dir, files=files))


def describe_spec(spec: EnvSpec) -> str:
    """``observation float32 (25,), action continuous 3``."""
    return f"observation {spec.obs_dtype} {tuple(spec.obs_shape)}, action {spec.action_type} {spec.num_actions}"


def fitting_parts(source: EnvSpec, target: EnvSpec) -> list:
    """The parts whose shapes do not depend on a spec that differs between ``source`` and ``target``."""
    fits = {"observation": (tuple(source.obs_shape), source.obs_dtype) == (tuple(target.obs_shape), target.obs_dtype),
            "action": (source.action_type, source.num_actions) == (target.action_type, target.num_actions)}
    return [p for p in PARTS if all(fits[n] for n in NEEDS[p])]


def check_compatible(source: SourceRun, cfg: Config, spec: EnvSpec) -> None:
    """Raise one ConfigError line naming both specs and what can still be reused when a reused part (or the
    reused replay) needs a spec that differs."""
    ok = fitting_parts(source.spec, spec)
    blocked = [p for p in cfg.adapt.reuse if p not in ok]
    if cfg.adapt.reuse_replay and len(ok) < len(PARTS):
        blocked.append("the replay")
    if blocked:
        can = f"adapt.reuse=[{','.join(ok)}] and adapt.reuse_replay=false" if ok else "nothing"
        raise ConfigError(f"init_from={source.run_dir!r} does not fit task={cfg.task!r}: source "
                          f"{source.cfg.task} has {describe_spec(source.spec)}, target has {describe_spec(spec)}; "
                          f"{', '.join(blocked)} cannot be reused; what can: {can}")


def check_source(cfg: Config, spec: EnvSpec, model: Optional[torch.nn.Module] = None) -> SourceRun:
    """Before a fine-tune run writes its run directory: the source exists, has an intact checkpoint and fits
    ``spec`` (see :func:`check_compatible`), and its reused weights fit ``model`` (when given)."""
    source = open_source(cfg.init_from, with_replay=cfg.adapt.reuse_replay)
    check_compatible(source, cfg, spec)
    if model is not None:
        state, _ = load_checkpoint(source.checkpoint, map_location="cpu", with_replay=False)
        try:
            check_parts(model, state["model"], cfg.adapt.reuse, cfg.init_from)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    return source


def initialise(cfg: Config, spec: EnvSpec, model: torch.nn.Module, replay, device) -> str:
    """Load the ``adapt.reuse`` parts of the source's newest intact checkpoint into ``model`` and, with
    ``adapt.reuse_replay``, copy its replay (rewards relabelled with ``adapt.relabel``) into ``replay``.

    Returns:
        One line saying what was loaded, for the run's log.
    """
    source = check_source(cfg, spec)
    state, replay_state = load_checkpoint(source.checkpoint, map_location=device, with_replay=cfg.adapt.reuse_replay)
    try:
        names = load_parts(model, state["model"], cfg.adapt.reuse, cfg.init_from)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    line = f"ezrobot: init_from {source.checkpoint}: {len(names)} tensors of {', '.join(cfg.adapt.reuse) or 'no part'}"
    if cfg.adapt.reuse_replay:
        if replay_state is None:
            raise ConfigError(f"init_from={cfg.init_from!r}: checkpoint {source.checkpoint} has no replay "
                              "(log.save_replay was off); set adapt.reuse_replay=false")
        rewards = relabelled_rewards(replay_state, cfg) if cfg.adapt.relabel else None
        copied = copy_episodes(replay, replay_state, rewards)
        line += f"; {copied} replay transitions{' (relabelled)' if rewards is not None else ''}"
    print(line, file=sys.stderr)
    return line


def _override_value(value) -> str:
    """A config value as a Hydra override's right-hand side."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    return str(value)


def finetune_overrides(source_dir: str, overrides: list) -> list:
    """The Hydra overrides of ``ezrobot finetune from=source_dir [overrides]``: the source's preset, task
    (unless ``task=`` is given) and every ``model.*`` field it set (unless overridden, so the reused parts
    fit), then ``init_from`` and the given overrides.

    Raises:
        ConfigError: ``source_dir`` holds no run.
    """
    src = read_run_config(source_dir, "from")
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    base = [f"experiment={src.experiment}", f"init_from={source_dir}"]
    base += [] if "task" in given else [f"task={src.task}"]
    for name, value in vars(src.model).items():
        if value is not None and f"model.{name}" not in given:
            base.append(f"model.{name}={_override_value(value)}")
    return base + list(overrides)
