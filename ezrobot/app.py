"""Command implementations behind ``ezrobot train|eval|video`` (the CLI module only dispatches here)."""
from __future__ import annotations

import json
import os
import sys
from typing import List

from ezrobot.cli import UsageError, parse_kv

# Fields that may differ when a run directory is re-used (resume with a longer budget, other logging).
_RESUMABLE_DIFFS = ("env_steps", "eval.", "log.", "run_dir", "device", "threads")


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k != "gym_kwargs":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_same_run(cfg, run_dir: str) -> None:
    """Refuse to resume a run directory whose saved config differs in a field that changes the run."""
    import yaml
    from omegaconf import OmegaConf

    from ezrobot.config import ConfigError

    with open(os.path.join(run_dir, "config.yaml")) as f:
        saved = _flatten(yaml.safe_load(f) or {})
    new = _flatten(OmegaConf.to_container(OmegaConf.structured(cfg)))
    diffs = [k for k in sorted(set(saved) | set(new)) if saved.get(k) != new.get(k)
             and not k.startswith(_RESUMABLE_DIFFS)]
    if diffs:
        k = diffs[0]
        raise ConfigError(f"run_dir {run_dir!r} holds a run with {k}={saved.get(k)!r} (now {new.get(k)!r}); "
                          "re-run with the same settings to resume, or choose another run_dir")


def train_command(args: List[str]) -> int:
    """``ezrobot train [overrides]``: compose the config, build the parts, train (resuming if possible)."""
    from ezrobot.hydra_config import load_config, schema_help, to_yaml

    if any(a in ("-h", "--help") for a in args):
        print("usage: ezrobot train [key=value ...]\n\nconfig fields (defaults of the schema; presets "
              "override them):\n" + schema_help())
        return 0
    cfg = load_config(args)
    from ezrobot.factory import build_parts
    from ezrobot.trainer import Trainer

    config_path = os.path.join(cfg.run_dir, "config.yaml")
    if os.path.exists(config_path):
        _check_same_run(cfg, cfg.run_dir)
    parts = build_parts(cfg)  # validates the task and builds everything before the run dir is written
    os.makedirs(cfg.run_dir, exist_ok=True)
    tmp = config_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(to_yaml(cfg))
    os.replace(tmp, config_path)
    parts.attach_logger(cfg)
    print(f"ezrobot: run_dir={cfg.run_dir} task={cfg.task} device={parts.device} "
          f"params={parts.param_count / 1e6:.2f}M", file=sys.stderr)
    summary = Trainer(cfg, parts).run()
    print(json.dumps(summary))
    return 0


def _load_run(run_dir: str, checkpoint: str | None, device: str = "auto"):
    """Config, parts and the chosen checkpoint's weights of an existing run."""
    from ezrobot.checkpoint import latest_checkpoint, load_checkpoint, load_model_weights
    from ezrobot.factory import build_parts
    from ezrobot.hydra_config import from_yaml

    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise FileNotFoundError(f"run_dir {run_dir!r} has no config.yaml; train first with "
                                f"`ezrobot train run_dir={run_dir}`")
    with open(path) as f:
        cfg = from_yaml(f.read())
    cfg.device = device
    ckpt = checkpoint or latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"run_dir {run_dir!r} has no checkpoint yet")
    if not os.path.exists(os.path.join(ckpt, "state.pt")):
        raise FileNotFoundError(f"checkpoint {ckpt!r} is not a checkpoint directory (no state.pt)")
    parts = build_parts(cfg, with_replay=False)
    state, _ = load_checkpoint(ckpt, map_location=parts.device, with_replay=False)
    load_model_weights(parts.model, state["model"], ckpt)
    parts.model.eval()
    return cfg, parts, ckpt, state


def eval_command(args: List[str]) -> int:
    """``ezrobot eval run_dir=R [episodes=N] [checkpoint=PATH] [seed=S]``: print eval metrics as JSON."""
    kv = parse_kv(args, {"run_dir": "run directory", "episodes": "episodes", "checkpoint": "checkpoint dir",
                         "seed": "seed", "device": "device"})
    if "run_dir" not in kv:
        raise UsageError("eval needs run_dir=R")
    cfg, parts, ckpt, state = _load_run(kv["run_dir"], kv.get("checkpoint"), kv.get("device", "auto"))
    episodes = _positive_int(kv.get("episodes", str(cfg.eval.episodes)), "episodes")
    seed = int(kv.get("seed", 10_000 + cfg.seed))
    stats = parts.evaluate_episodes(parts.model, episodes, seed)
    stats.update({"checkpoint": ckpt, "env_steps": state["counters"]["env_steps"]})
    print(json.dumps(stats))
    return 0


def _positive_int(value: str, name: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise UsageError(f"{name}={value!r} must be a positive integer") from None
    if n <= 0:
        raise UsageError(f"{name}={value!r} must be a positive integer")
    return n


def video_command(args: List[str]) -> int:
    """``ezrobot video ...``: render rollouts of a trained run or of a random policy on a task."""
    from ezrobot.videos import render_command

    return render_command(args)
