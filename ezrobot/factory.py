"""Builds every part of a run from its config (the trainer only receives them): :func:`build_parts` for
evaluating a trained model, :func:`build_training` for a training run (the same parts plus replay,
learner, reanalyzer and self-play)."""
from __future__ import annotations

import copy
import dataclasses
import random
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from ezrobot.agent import SearchAgent
from ezrobot.config import Config, ConfigError, Derived, derive
from ezrobot.envs import make_env
from ezrobot.envs.spec import Env, EnvSpec
from ezrobot.evaluate import Evaluator, VideoRecorder
from ezrobot.learner import Learner
from ezrobot.nets import EfficientZeroNet, build_model
from ezrobot.reanalyze import Reanalyzer
from ezrobot.replay.buffer import Replay
from ezrobot.replay.config import ReplayConfig
from ezrobot.replay.sizing import available_memory, estimate_nbytes, positions_needed
from ezrobot.selfplay import RandomActor, SelfPlay


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


def frozen_copy(model: EfficientZeroNet) -> EfficientZeroNet:
    """A no-grad copy in eval mode (target and self-play networks)."""
    clone = copy.deepcopy(model).eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


@dataclass(frozen=True)
class Parts:
    """What evaluation, the video command and the trainer share: the model copies and the search.

    Attributes:
        cfg: The run configuration.
        device: Device of the models.
        spec: The environments' ``EnvSpec``.
        derived: Values derived from ``cfg`` and ``spec`` (budgets, schedules).
        model: The online network (trained by the learner).
        target_model: Frozen copy for bootstrap values and reanalysis, refreshed every
            ``train.target_update_interval`` updates.
        selfplay_model: Frozen copy searched by self-play, refreshed every ``train.selfplay_update_interval``.
        agent: Runs the batched tree search with any of the three networks.
        evaluator: Deterministic evaluation (and evaluation videos).
        selfplay_rng: Generator of the self-play searches.
    """

    cfg: Config
    device: torch.device
    spec: EnvSpec
    derived: Derived
    model: EfficientZeroNet
    target_model: EfficientZeroNet
    selfplay_model: EfficientZeroNet
    agent: SearchAgent
    evaluator: Evaluator
    selfplay_rng: np.random.Generator

    @property
    def param_count(self) -> int:
        """Parameters of the online network."""
        return sum(p.numel() for p in self.model.parameters())


@dataclass(frozen=True)
class TrainingParts:
    """The parts only a training run has.

    Attributes:
        replay: Prioritized replay of every environment's transitions.
        learner: Gradient steps on the online network.
        reanalyzer: Builds learner batches (targets) from replay positions.
        selfplay: Steps the training environments and writes the replay.
        random_actor: The uniform random policy of the warm-up phase.
    """

    replay: Replay
    learner: Learner
    reanalyzer: Reanalyzer
    selfplay: SelfPlay
    random_actor: RandomActor


def _check_continuous_options(cfg: Config, spec) -> None:
    """Raise ConfigError when an option that acts only on continuous actions is set for a discrete task."""
    if cfg.train.reanalyze_search != "tree" and (spec.action_type != "continuous"
                                                 or cfg.search.variant != "gumbel"):
        raise ConfigError(f"train.reanalyze_search={cfg.train.reanalyze_search!r} needs a continuous action space and "
                          f"search.variant=gumbel (got {spec.action_type} actions, search.variant="
                          f"{cfg.search.variant!r}); use train.reanalyze_search=tree")
    if cfg.train.model_gradient_coeff > 0 and spec.action_type != "continuous":
        raise ConfigError(f"train.model_gradient_coeff={cfg.train.model_gradient_coeff!r} acts only on continuous "
                          f"actions (got {spec.action_type} actions); use train.model_gradient_coeff=0")
    if cfg.train.entropy_target and spec.action_type != "continuous":
        raise ConfigError(f"train.entropy_target={list(cfg.train.entropy_target)!r} acts only on continuous "
                          f"actions (got {spec.action_type} actions); use train.entropy_target=[]")


def _build_core(cfg: Config, video_recorder: Optional[VideoRecorder]) -> Tuple[Parts, Env]:
    """The shared parts and the first training environment (seeded ``cfg.seed``)."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    env, spec = make_env(cfg.task, cfg.env, seed=cfg.seed, train=True)
    try:
        _check_continuous_options(cfg, spec)
        model = build_model(cfg.model, spec, device=device)
    except ValueError as err:  # ConfigError included: one error line, the env closed
        env.close()
        raise ConfigError(str(err)) from None
    if cfg.train.channels_last and spec.is_pixels:
        model = model.to(memory_format=torch.channels_last)
    derived = derive(cfg, spec.action_repeat)
    agent = SearchAgent(cfg.search, spec.action_type == "continuous", spec.discount, device)
    evaluator = Evaluator(cfg, spec, agent, video_recorder)
    parts = Parts(cfg, device, spec, derived, model, frozen_copy(model), frozen_copy(model), agent, evaluator,
                  selfplay_rng=np.random.default_rng(cfg.seed))
    return parts, env


def build_parts(cfg: Config) -> Parts:
    """The parts that evaluate a trained model (no replay, learner or training environments)."""
    parts, env = _build_core(cfg, None)
    env.close()
    return parts


def sized_replay(cfg: Config, spec: EnvSpec, derived: Derived, policy_size: int) -> ReplayConfig:
    """``cfg.replay`` with the capacity the run can fill (``replay.capacity`` or fewer positions), checked
    against the available memory before anything is allocated.

    Raises:
        ConfigError: naming the bytes the replay needs and the bytes available.
    """
    capacity = min(int(cfg.replay.capacity), positions_needed(derived.agent_steps, cfg.train.num_envs))
    if cfg.init_from and cfg.adapt.reuse_replay:  # room for the source's transitions too
        capacity = int(cfg.replay.capacity)
    action_dim = spec.num_actions if spec.action_type == "continuous" else 0
    shape = spec.physics_state_shape if cfg.replay.store_physics_states else ()
    states = int(np.prod(shape)) if shape else 0
    need, free = estimate_nbytes(capacity, spec, policy_size, action_dim, states), available_memory()
    if free is not None and need > free:
        raise ConfigError(f"replay.capacity={cfg.replay.capacity} needs {need:,} bytes ({need / 2**30:.1f} GiB) "
                          f"for {capacity:,} positions but {free:,} bytes ({free / 2**30:.1f} GiB) are "
                          "available; lower replay.capacity (or env_steps)")
    return dataclasses.replace(cfg.replay, capacity=capacity)


def replay_kwargs(cfg: Config, spec: EnvSpec, num_envs: int) -> dict:
    """``Replay``'s keyword arguments for ``num_envs`` environments writing to it."""
    continuous = spec.action_type == "continuous"
    return {"num_envs": num_envs, "unroll_steps": cfg.train.unroll_steps, "td_steps": cfg.train.td_steps,
            "policy_size": cfg.search.num_sampled_actions if continuous else spec.num_actions,
            "action_dim": spec.num_actions if continuous else 0}


def build_learner(cfg: Config, video_recorder: Optional[VideoRecorder] = None) -> Tuple[Parts, Learner, ReplayConfig]:
    """The parts of a distributed run's learner process: model copies, search agent, evaluator, learner and
    the replay settings sized for the envs of all its self-play actors (the replay itself lives elsewhere)."""
    parts, first_env = _build_core(cfg, video_recorder)
    first_env.close()
    spec = parts.spec
    policy_size = cfg.search.num_sampled_actions if spec.action_type == "continuous" else spec.num_actions
    envs = cfg.train.num_envs * cfg.distributed.num_actors
    sizing = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, num_envs=envs))
    learner = Learner(parts.model, cfg, spec.action_type, parts.device, target_model=parts.target_model,
                      discount=spec.discount, total_updates=parts.derived.total_updates)
    return parts, learner, sized_replay(sizing, spec, parts.derived, policy_size)


def build_training(cfg: Config, video_recorder: Optional[VideoRecorder] = None) -> Tuple[Parts, TrainingParts]:
    """Environments, model copies, search agent, evaluator, replay, learner, reanalyzer and self-play.

    Args:
        cfg: The validated run configuration.
        video_recorder: Renders the first episode of each periodic evaluation (``eval.video``), or None.
    """
    parts, first_env = _build_core(cfg, video_recorder)
    spec = parts.spec
    continuous = spec.action_type == "continuous"
    policy_size = cfg.search.num_sampled_actions if continuous else spec.num_actions
    envs = [first_env] + [make_env(cfg.task, cfg.env, seed=cfg.seed + i, train=True)[0]
                          for i in range(1, cfg.train.num_envs)]
    replay_cfg = sized_replay(cfg, spec, parts.derived, policy_size)
    replay = Replay(replay_cfg, spec, **replay_kwargs(cfg, spec, cfg.train.num_envs))
    learner = Learner(parts.model, cfg, spec.action_type, parts.device, target_model=parts.target_model,
                      discount=spec.discount, total_updates=parts.derived.total_updates)
    reanalyzer = Reanalyzer(cfg, spec, parts.derived, replay, parts.target_model, parts.agent, parts.device)
    selfplay = SelfPlay(envs, spec, replay, seed=cfg.seed)
    random_actor = RandomActor(spec, policy_size, np.random.default_rng(cfg.seed + 1))
    return parts, TrainingParts(replay, learner, reanalyzer, selfplay, random_actor)
