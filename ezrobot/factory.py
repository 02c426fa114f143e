"""Builds every part of a run from its config (the trainer only receives them)."""
from __future__ import annotations

import copy
import dataclasses
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch

from ezrobot.config import Config, ConfigError, Derived, derive
from ezrobot.envs import make_env
from ezrobot.envs.spec import EnvSpec


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; explicit CUDA requests fail clearly without CUDA."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but CUDA is not available here; use device=cpu or device=auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A no-grad copy in eval mode (target and self-play networks)."""
    clone = copy.deepcopy(model).eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


@dataclass
class Parts:
    """Everything the trainer and the eval/video commands need."""

    cfg: Config
    device: torch.device
    spec: EnvSpec
    derived: Derived
    model: torch.nn.Module
    target_model: torch.nn.Module
    selfplay_model: torch.nn.Module
    agent: Any
    replay: Any = None
    learner: Any = None
    reanalyzer: Any = None
    selfplay: Any = None
    logger: Any = None
    random_act_fn: Optional[Callable] = None
    rng: Optional[np.random.Generator] = None

    @property
    def param_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def attach_logger(self, cfg: Config) -> None:
        from ezrobot.logger import MetricsLogger
        self.logger = MetricsLogger(cfg.run_dir, tensorboard=cfg.log.tensorboard)

    def search_act_fn(self, temperature: float) -> Callable:
        """Self-play policy: training search (noise, sampled actions) with the self-play weights."""
        return self.agent.act_fn(self.selfplay_model, self.rng, train=True, temperature=temperature)

    def make_eval_envs(self, episodes: int, seed: int):
        return [make_env(self.cfg.task, self.cfg.env, seed=seed + i, train=False)[0] for i in range(episodes)]

    def evaluate_episodes(self, model: torch.nn.Module, episodes: int, seed: int,
                          on_step: Optional[Callable] = None) -> Dict[str, float]:
        """Deterministic evaluation of ``model`` over ``episodes`` parallel episodes."""
        from ezrobot.evaluate import run_episodes, summarize

        was_training = model.training
        model.eval()
        envs = self.make_eval_envs(episodes, seed)
        try:
            act = self.agent.act_fn(model, np.random.default_rng(seed), train=False)
            stats = run_episodes(envs, act, seed, self.spec.action_repeat, on_step=on_step)
        finally:
            for env in envs:
                env.close()
            model.train(was_training)
        return summarize(stats)

    def evaluator(self, model: torch.nn.Module, env_steps: int) -> Dict[str, float]:
        """The trainer's periodic evaluation (fixed seeds; optional video of the first episode)."""
        seed = 10_000 + self.cfg.seed
        stats = self.evaluate_episodes(model, self.cfg.eval.episodes, seed)
        if self.cfg.eval.video:
            from ezrobot.videos import record_eval_video

            record_eval_video(self, model, env_steps, seed)
        return stats


def _search_config(cfg: Config, model: torch.nn.Module):
    """The search settings with the model-dependent field derived from the model."""
    return dataclasses.replace(cfg.search, use_value_prefix=bool(model.use_value_prefix))


def build_parts(cfg: Config, with_replay: bool = True) -> Parts:
    """Environments, model copies, search agent and (for training) replay, learner, reanalyzer, actor."""
    from ezrobot.agent import SearchAgent
    from ezrobot.nets import build_model

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    env, spec = make_env(cfg.task, cfg.env, seed=cfg.seed, train=True)
    try:
        model = build_model(cfg.model, spec, device=device)
    except ValueError as err:
        env.close()
        raise ConfigError(str(err)) from None
    if cfg.train.channels_last and spec.is_pixels:
        model = model.to(memory_format=torch.channels_last)
    derived = derive(cfg, spec.action_repeat)
    search_cfg = _search_config(cfg, model)
    agent = SearchAgent(search_cfg, spec.action_type == "continuous", spec.discount, device)
    parts = Parts(cfg, device, spec, derived, model, frozen_copy(model), frozen_copy(model), agent,
                  rng=np.random.default_rng(cfg.seed))
    if not with_replay:
        env.close()
        return parts
    _build_training(parts, env)
    return parts


def _build_training(parts: Parts, first_env) -> None:
    from ezrobot.learner import Learner
    from ezrobot.reanalyze import Reanalyzer
    from ezrobot.replay import Replay
    from ezrobot.selfplay import SelfPlay, random_act_fn

    cfg, spec = parts.cfg, parts.spec
    continuous = spec.action_type == "continuous"
    policy_size = cfg.search.num_sampled_actions if continuous else spec.num_actions
    envs = [first_env] + [make_env(cfg.task, cfg.env, seed=cfg.seed + i, train=True)[0]
                          for i in range(1, cfg.train.num_envs)]
    parts.replay = Replay(cfg.replay, spec, num_envs=cfg.train.num_envs, unroll_steps=cfg.train.unroll_steps,
                          td_steps=cfg.train.td_steps, policy_size=policy_size,
                          action_dim=spec.num_actions if continuous else 0)
    parts.learner = Learner(parts.model, cfg, spec.action_type, parts.device, target_model=parts.target_model)
    parts.reanalyzer = Reanalyzer(cfg, spec, parts.derived, parts.replay, parts.target_model, parts.agent,
                                  parts.device)
    parts.selfplay = SelfPlay(envs, spec, parts.replay, seed=cfg.seed)
    parts.random_act_fn = random_act_fn(spec, policy_size, np.random.default_rng(cfg.seed + 1))
