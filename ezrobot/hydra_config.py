"""Compose the run configuration with Hydra: ConfigStore schema + packaged YAML presets + CLI overrides."""
from __future__ import annotations

import os
import re
from importlib import resources
from typing import List, Sequence

from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from ezrobot.config import REMOVED_FIELDS, Config, ConfigError, absolute_task, default_run_dir, validate
from ezrobot.schema import describe
from ezrobot.usage import suggest

_REGISTERED = False


def _register() -> None:
    global _REGISTERED
    if not _REGISTERED:
        ConfigStore.instance().store(name="base_config", node=Config)
        _REGISTERED = True


def experiments() -> List[str]:
    """Names of the packaged presets (``configs/experiment/*.yaml``)."""
    folder = resources.files("ezrobot.configs") / "experiment"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _check_overrides(overrides: Sequence[str]) -> None:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"argument {item!r} is not an override; use key=value (e.g. seed=1)")
        key, value = item.split("=", 1)
        if key.lstrip("+~") in REMOVED_FIELDS:
            name = key.lstrip("+~")
            raise ConfigError(f"{name} was removed: {REMOVED_FIELDS[name]}")
        if key.lstrip("+~") == "distributed" and value not in ("none", "ray"):
            raise ConfigError(f"distributed={value!r} is not allowed; choose none (one process) or ray")
        if key.lstrip("+~") == "experiment" and value not in experiments():
            raise ConfigError(
                f"experiment={value!r} is not a preset{suggest(value, experiments())}; "
                f"choose one of {', '.join(experiments())}")


def _one_line(err: Exception) -> str:
    """Turn Hydra/OmegaConf exceptions into a single readable line."""
    text = str(err)
    cause = err.__cause__ or err.__context__
    if cause is not None and type(err).__name__ == "ConfigCompositionException":
        text = f"{text} {cause}"
    key = re.search(r"full_key:\s*(\S+)", text)
    text = re.sub(r"\s*full_key:.*", "", text, flags=re.S)
    if key and key.group(1) not in text:
        text = f"{key.group(1)}: {text}"
    text = re.sub(r"\s+", " ", text).strip()
    match = re.search(r"Key '([^']+)' (?:is )?not in (?:struct|'Config')", text)
    if match:
        key = re.search(r"Could not override '([^']+)'", text)
        name = key.group(1) if key else match.group(1)
        if name.lstrip("+~").startswith("env.gym_kwargs"):
            return (f"{name}: keyword arguments are added one at a time with +env.gym_kwargs.<name>=<value> "
                    "(e.g. +env.gym_kwargs.delta_fraction=0.1)")
        return f"unknown config key {name!r}; see `ezrobot train --help` for the schema"
    return text


def load_config(overrides: Sequence[str] = ()) -> Config:
    """Compose, type-check and validate the configuration.

    Args:
        overrides: Hydra overrides such as ``["experiment=atari_cpu", "task=atari/Pong", "seed=1"]``.

    Returns:
        A validated :class:`Config` (a plain dataclass instance) with ``run_dir`` filled in.

    Raises:
        ConfigError: one line naming the bad field or value and what is allowed.
    """
    _register()
    _check_overrides(overrides)
    # ``configs/task/`` holds the tasks' reward scales, so Hydra would read ``task=X`` as a config-group
    # choice; the top-level ``task`` string is applied after composition instead (the last one wins).
    tasks = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] in ("task", "+task", "++task")]
    rest = [o for o in overrides if o.split("=", 1)[0] not in ("task", "+task", "++task")]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="ezrobot.configs", version_base="1.3"):
            node = compose(config_name="config", overrides=rest)
        if tasks:
            node.task = tasks[-1]
        cfg: Config = OmegaConf.to_object(node)
    except ConfigError:
        raise
    except Exception as err:  # Hydra and OmegaConf raise many exception types; all are user errors here.
        raise ConfigError(_one_line(err)) from None
    finally:
        GlobalHydra.instance().clear()
    if not cfg.run_dir:
        cfg.run_dir = default_run_dir(cfg)
    cfg.task = absolute_task(cfg.task)
    cfg.init_from = os.path.abspath(cfg.init_from) if cfg.init_from else ""  # found again from any directory
    validate(cfg)
    return cfg


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML (saved as ``<run_dir>/config.yaml``)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def from_yaml(text: str) -> Config:
    """Read a saved ``config.yaml`` back into a :class:`Config`."""
    _register()
    schema = OmegaConf.structured(Config)
    try:
        saved = OmegaConf.create(text)
        for dotted in REMOVED_FIELDS:  # written by earlier versions
            group, name = dotted.split(".")
            if group in saved and name in saved[group]:
                saved[group].pop(name)
        merged = OmegaConf.merge(schema, saved)
        return OmegaConf.to_object(merged)
    except Exception as err:
        raise ConfigError(f"saved config does not match the schema: {_one_line(err)}") from None


def schema_help() -> str:
    """Every field with its default, its choices and its docstring, for ``ezrobot train --help``."""
    return "\n".join(describe(Config()))
