"""Run directories: start or resume a training run, and load a trained run for evaluation or videos.

This is the layer the commands and the DMC benchmark call; it sits above the factory and the trainer.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import yaml
from omegaconf import OmegaConf

from ezrobot.adapt.source import check_source
from ezrobot.checkpoint import CheckpointError, check_checkpoint, load_checkpoint, load_model_weights, newest_intact
from ezrobot.config import REMOVED_FIELDS, Config, ConfigError, absolute_task
from ezrobot.distributed.trainer import DistributedTrainer
from ezrobot.factory import Parts, build_learner, build_parts, build_training
from ezrobot.hydra_config import from_yaml, to_yaml
from ezrobot.logger import MetricsLogger
from ezrobot.rollout_video import EvalVideoRecorder
from ezrobot.trainer import Trainer
from ezrobot.usage import UsageError, unwritable_reason

RESUMABLE_DIFFS = ("env_steps", "eval.", "log.", "run_dir", "device", "threads", "distributed.address")
"""Fields that may differ when a run directory is re-used (resume with a longer budget, other logging)."""


def flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}`` (``gym_kwargs`` stays one value)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k != "gym_kwargs":
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_same_run(cfg: Config, run_dir: str) -> None:
    """Refuse to resume a run directory whose saved config differs in a field that changes the run."""
    with open(os.path.join(run_dir, "config.yaml")) as f:
        saved = flatten(yaml.safe_load(f) or {})
    saved["task"] = absolute_task(str(saved.get("task", "")))  # saved relative by earlier versions
    new = flatten(OmegaConf.to_container(OmegaConf.structured(cfg)))
    defaults = flatten(OmegaConf.to_container(OmegaConf.structured(Config())))  # fields newer than the run
    saved.update({k: defaults[k] for k in set(new) - set(saved) if k in defaults})
    diffs = [k for k in sorted(set(saved) | set(new)) if saved.get(k) != new.get(k)
             and not k.startswith(RESUMABLE_DIFFS) and k not in REMOVED_FIELDS]
    if diffs:
        k = diffs[0]
        raise ConfigError(f"run_dir {run_dir!r} holds a run with {k}={saved.get(k)!r} (now {new.get(k)!r}); "
                          "re-run with the same settings to resume, or choose another run_dir")


def train_or_reuse(cfg: Config) -> Dict[str, Any]:
    """A benchmark's (task, seed): :func:`train` (or resume) ``cfg.run_dir``, or return its finished
    ``summary.json`` when the saved config is the one ``cfg`` would train (:func:`check_same_run`, and the same
    ``env_steps``); otherwise ConfigError in one line naming the differing field."""
    run_dir = cfg.run_dir
    summary_path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(summary_path):
        summary = train(cfg)
        print(json.dumps(summary))  # the summary line `ezrobot train` prints
        return summary
    check_same_run(cfg, run_dir)  # every field that changes training, env_steps aside
    with open(os.path.join(run_dir, "config.yaml")) as f:
        saved_steps = yaml.safe_load(f).get("env_steps")
    if saved_steps != cfg.env_steps:
        raise ConfigError(f"run_dir {run_dir!r} holds a finished run with env_steps={saved_steps} (now "
                          f"{cfg.env_steps}); choose another --out to run this budget")
    with open(summary_path) as f:
        return json.load(f)


def parse_seeds(text: str) -> List[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; UsageError on anything else or an empty list."""
    try:
        seeds = [int(s) for s in text.split(",") if s]
    except ValueError:
        raise UsageError(f"--seeds {text!r} must be comma-separated integers") from None
    if not seeds:
        raise UsageError("--seeds must name at least one seed")
    return seeds


def train(cfg: Config) -> Dict[str, Any]:
    """Build the parts, write ``config.yaml`` and train (resuming from the run directory's newest checkpoint).

    Returns:
        The run's summary (also written to ``summary.json``).
    """
    reason = unwritable_reason(cfg.run_dir, "directory")
    if reason:
        raise ConfigError(f"run_dir={cfg.run_dir!r} {reason}; choose a writable directory")
    config_path = os.path.join(cfg.run_dir, "config.yaml")
    if os.path.exists(config_path):
        check_same_run(cfg, cfg.run_dir)
    recorder = EvalVideoRecorder(cfg) if cfg.eval.video else None
    distributed = cfg.distributed.backend == "ray"
    if distributed:  # the learner's parts; the replay and the environments live in the Ray actors
        parts, learner, replay_cfg = build_learner(cfg, recorder)
    else:
        parts, training = build_training(cfg, recorder)  # validates the task before the run dir is written
    if cfg.init_from and not os.path.exists(config_path):
        check_source(cfg, parts.spec, parts.model)  # a misfit is refused before anything is written
    os.makedirs(cfg.run_dir, exist_ok=True)
    tmp = config_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(to_yaml(cfg))
    os.replace(tmp, config_path)
    logger = MetricsLogger(cfg.run_dir, tensorboard=cfg.log.tensorboard)
    print(f"ezrobot: run_dir={cfg.run_dir} task={cfg.task} device={parts.device} "
          f"params={parts.param_count / 1e6:.2f}M", file=sys.stderr)
    if distributed:
        return DistributedTrainer(parts, learner, replay_cfg, logger).run()
    return Trainer(parts, training, logger).run()


@dataclass(frozen=True)
class LoadedRun:
    """A trained run ready for evaluation.

    Attributes:
        cfg: The run's saved configuration (``device`` replaced by the requested one).
        parts: Its parts with the checkpoint's online weights loaded (eval mode).
        checkpoint: The checkpoint directory loaded.
        env_steps: Env steps the run had taken at that checkpoint.
    """

    cfg: Config
    parts: Parts
    checkpoint: str
    env_steps: int


def load_run(run_dir: str, checkpoint: Optional[str] = None, device: str = "auto") -> LoadedRun:
    """Config, parts and the chosen (default: newest) checkpoint's weights of an existing run."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise FileNotFoundError(f"run_dir {run_dir!r} has no config.yaml; train first with "
                                f"`ezrobot train run_dir={run_dir}`")
    with open(path) as f:
        cfg = from_yaml(f.read())
    cfg.device = device
    ckpt = checkpoint or newest_intact(run_dir)
    if not os.path.exists(os.path.join(ckpt, "state.pt")):
        raise FileNotFoundError(f"checkpoint {ckpt!r} is not a checkpoint directory (no state.pt)")
    problem = check_checkpoint(ckpt, files=("state.pt",))
    if problem:
        raise CheckpointError(f"checkpoint {ckpt!r} is damaged: {problem}; choose another with checkpoint=PATH")
    parts = build_parts(cfg)
    state, _ = load_checkpoint(ckpt, map_location=parts.device, with_replay=False)
    load_model_weights(parts.model, state["model"], ckpt)
    parts.model.eval()
    return LoadedRun(cfg, parts, ckpt, int(state["counters"]["env_steps"]))
