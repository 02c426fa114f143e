"""Typed configuration schema (Hydra structured configs), validation and derived values.

The whole schema is one dataclass tree registered in Hydra's ConfigStore as ``base_config``; the YAML
files under ``ezrobot/configs`` (``config.yaml`` and the ``experiment`` group) only override defaults.
``load_config(overrides)`` composes, validates and returns a :class:`Config` object. Values that follow
from others (total updates, the off-policy horizon's T, schedules in updates) are computed in one place,
:func:`derive`, and never stored twice.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import List

from ezrobot.adapt.config import AdaptConfig
from ezrobot.distributed.config import DistributedConfig
from ezrobot.envs.spec import EnvConfig
from ezrobot.mcts.config import SearchConfig
from ezrobot.nets.config import ModelConfig
from ezrobot.replay.config import ReplayConfig
from ezrobot.schema import check_choices, choice


class ConfigError(ValueError):
    """A user-facing configuration error. Its message is one line naming the field and what is allowed."""


REMOVED_FIELDS = {
    "train.compile": "it was read nowhere (no torch.compile path exists)",
    "search.use_value_prefix": "the search takes it from the model; set model.use_value_prefix",
}
"""Fields of earlier versions: overriding one is an error that says why; saved run configs that still hold
them load (the value is dropped) and resume."""


@dataclass
class TrainConfig:
    """Learner and data-collection settings (the ``train`` group)."""

    batch_size: int = 256
    """Samples per gradient step."""
    unroll_steps: int = 5
    """K: dynamics unroll length for the losses."""
    td_steps: int = 5
    """n: bootstrap horizon of the value targets (the largest one when ``dynamic_td`` is on)."""
    cache_bootstrap_values: bool = True
    """Keep the target network's value of each replay position until that network (or the position's
    observation) changes, instead of recomputing it per batch: the same targets, fewer forward passes."""
    dynamic_td: bool = True
    """EfficientZero off-policy correction: horizon clip(td_steps - floor(age / (0.3 T)), 1, td_steps)."""
    value_target: str = choice("td", ("td", "mixed"))
    """``td``: n-step targets from the target network; ``mixed``: EZ-V2 SVE for old data (see below)."""
    mixed_value_t1: int = 40_000
    """``mixed`` only: plain TD targets during the first T1 updates."""
    mixed_value_t2: int = 20_000
    """``mixed`` only: plain TD targets for the newest T2 transitions."""
    replay_ratio: float = 1.0
    """Gradient updates per agent step, held exactly during collection."""
    start_transitions: int = 2000
    """Agent steps collected with a uniformly random policy before learning starts."""
    extra_updates: int = 0
    """Updates run after the env-step budget is spent (the paper runs 20k more: 120k updates in all)."""
    reanalyze_ratio: float = 0.99
    """Fraction of each batch whose policy targets are recomputed by a fresh search with the target net."""
    reanalyze_simulations: int = 0
    """Simulations of each reanalysis search (0: ``search.num_simulations``). With sampled Gumbel search,
    as many simulations as root samples give every sample one visit: a one-step look-ahead r + γ V(s')."""
    reanalyze_search: str = choice("tree", ("tree", "one_step", "critic"))
    """How reanalysis recomputes policy targets. ``tree``: the numba search (``reanalyze_simulations``
    each). ``one_step`` (continuous Gumbel only): the targets of a tree search giving each considered root
    sample one simulation (r + γ V(s')), for the batch in one dynamics call (``ezrobot/lookahead.py``;
    ``reanalyze_simulations`` unused). ``critic``: the same with each sample's Q from the target network's
    critic, min_i Q_i(s, a) (needs ``model.critic_heads`` > 0)."""
    policy_from_reanalysis_only: bool = False
    """Train the policy only on this update's reanalysis targets: rows past ``reanalyze_ratio`` get no policy
    loss. Off: they train on the targets self-play stored (for continuous actions the executed action, so
    the policy loss there clones the replay's past behaviour instead of improving the current policy)."""
    target_update_interval: int = 200
    """Updates between copies of the online weights into the target network."""
    selfplay_update_interval: int = 100
    """Updates between refreshes of the weights used by self-play."""
    num_envs: int = 1
    """Environments stepped in lock-step by the in-process actor (one batched search for all)."""
    value_prefix_loss_coeff: float = 1.0
    """lambda_r: weight of the value-prefix (or reward) loss."""
    value_loss_coeff: float = 0.25
    """lambda_v: weight of the value loss."""
    policy_loss_coeff: float = 1.0
    """lambda_p: weight of the policy loss."""
    consistency_loss_coeff: float = 2.0
    """lambda_c: weight of the SimSiam temporal-consistency loss (0 disables it)."""
    consistency_target: str = choice("online", ("online", "target"))
    """Network whose stop-gradient projection of the real next observation is the consistency target:
    ``online`` (EfficientZero) or ``target`` (the target network, lagging by up to ``target_update_interval``
    updates, as SPR's and BYOL's target encoders: the online encoder cannot pull its targets to a constant)."""
    consistency_space: str = choice("projection", ("projection", "latent"))
    """Where consistency compares the dynamics' prediction with the next observation: ``projection``
    (EfficientZero: negative cosine of predictor(projector(predicted latent)) and the stop-gradient projection
    of the encoded observation) or ``latent`` (TD-MPC2: mean squared error of the two latents, no projector)."""
    consistency_start: int = 0
    """Updates before the consistency loss is switched on (0: from the first update)."""
    variance_loss_coeff: float = 0.0
    """Weight of a variance floor on the root latents (VICReg's variance term, mean over entries of
    relu(variance_floor - batch std); 0 disables it), against a collapse to one latent (``train/latent_std``)."""
    variance_floor: float = 0.1
    """Target standard deviation over the batch of each root latent entry (min-max latents lie in [0, 1])."""
    entropy_coeff: float = 0.0
    """Entropy bonus of the continuous policy (EZ-V2: 5e-3 vision, 5e-2 proprio)."""
    entropy_target: List[float] = field(default_factory=list)
    """Continuous actions: ``[start, end]`` nats per action dimension, linear over the run's updates; set,
    ``entropy_coeff`` is the start of a learnt coefficient (SAC's temperature): after each update log(coeff)
    moves by ``optim.lr`` x (target - the batch's root entropy per dimension). Empty: fixed ``entropy_coeff``."""
    policy_loss: str = choice("auto", ("auto", "ce", "best", "importance", "split"))
    """Continuous policy loss: ``ce`` (cross-entropy over the K sampled actions weighted by the search
    target), ``best`` (-log pi(a*) of the search's chosen action), ``auto`` (EZ-V2: ``ce`` for 1-D, else ``best``)
    or ``importance`` (``ce`` towards softmax(log(pi/beta) + sigma(q)) whatever root logits the search acts with;
    ``split``: ``best`` trains mu, ``importance`` sigma; both need fresh look-ahead targets only). Discrete
    spaces always use cross-entropy to the visit distribution."""
    policy_action_clip: float = 1.0 - 1e-6
    """Continuous: the policy loss's targets (and, below the default, the entropy samples) are clipped to +-this
    before atanh, bounding a pre-tanh target at atanh(clip) (7.25; EZ-V2's 0.999: 3.80), where sigma stops
    growing under uniform root logits with widened samples (docs/RESULTS.md, "EZ-V2's ±0.999 action clip")."""
    model_gradient_coeff: float = 0.0
    """Continuous actions: weight of a second policy loss, -Q(s, a) / scale, a reparameterised from the root
    policy, Q = r + γ V(g(s, a)) by the target network (not trained by it), scale the 5-95 percentile range
    of the batch's Q (at least 1): the model's dQ/da. 0: off (EZ-V2)."""
    actor_coeff: float = 0.0
    """With ``model.critic_heads`` > 0: weight of an actor loss at the root (SAC, TD-MPC2), -min_i Q_i(s, a) /
    scale - ``actor_entropy_coeff`` * entropy, a reparameterised from the policy on the stop-gradient latent,
    the critic not trained by it, scale the batch Q's 5-95 percentile range (at least 1). 0: off."""
    actor_entropy_coeff: float = 0.0
    """Entropy weight inside ``actor_coeff``'s loss, on the critic's range-normalised Q (TD-MPC2: 1e-4; the
    search's policy loss keeps ``entropy_coeff``). 0: no entropy term in the actor loss."""
    critic_target: str = choice("return", ("return", "td"))
    """The critic's target for the replay's first action: ``return`` (the row's n-step value target) or ``td``
    (SAC, TD-MPC2: r + γ min_i Q̄_i(s', a'), a' from the target network's policy at the real next state, Q̄ the
    target network's critic; no bootstrap past a termination)."""
    grad_clip: float = 5.0
    """Global gradient-norm clip."""
    dynamics_grad_scale: float = 0.5
    """Scale of the gradient flowing back through each dynamics step."""
    visit_temperatures: List[float] = field(default_factory=lambda: [1.0, 0.5, 0.25])
    """Self-play visit-count temperatures, switched at ``temperature_milestones``."""
    temperature_milestones: List[float] = field(default_factory=lambda: [0.5, 0.75])
    """Fractions of the update budget at which the next temperature applies."""
    augment: bool = True
    """Random shift + intensity augmentation of both consistency views (pixel observations only)."""
    bf16: bool = False
    """bfloat16 autocast for the learner's forward passes and the target network's bootstrap values (CUDA, CPU)."""
    channels_last: bool = False
    """channels_last memory format for conv nets."""


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (the ``optim`` group)."""

    optimizer: str = choice("sgd", ("sgd", "adamw", "adam"))
    """``sgd`` (paper), ``adamw`` or ``adam``."""
    lr: float = 0.2
    """Peak learning rate."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 1e-4
    """L2 weight decay (decoupled for AdamW)."""
    warmup_steps: int = 1000
    """Linear warm-up length in updates."""
    lr_decay_steps: List[int] = field(default_factory=lambda: [100_000])
    """Updates at which the learning rate is multiplied by ``lr_decay_rate``."""
    lr_decay_rate: float = 0.1
    """Step-decay factor."""


@dataclass
class EvalConfig:
    """Evaluation during and after training (the ``eval`` group)."""

    interval: int = 5000
    """Env steps between evaluations (one also runs at the end)."""
    episodes: int = 10
    """Episodes per evaluation (all run in parallel, deterministic search)."""
    num_simulations: int = 0
    """Simulations of each evaluation search (0: ``search.num_simulations``, as in training)."""
    video: bool = False
    """Save an mp4 of the first evaluation episode of each evaluation under ``<run_dir>/videos``."""
    video_camera: str = ""
    """Camera for evaluation videos (empty: the task's default)."""


@dataclass
class LogConfig:
    """Logging and checkpointing (the ``log`` group)."""

    checkpoint_interval: int = 5000
    """Env steps between checkpoints (one is also written at each evaluation and at the end)."""
    keep_checkpoints: int = 2
    """How many checkpoints to keep (older ones are deleted after a new one is complete)."""
    save_replay: bool = True
    """Include the replay buffer in checkpoints (needed for an exact resume)."""
    progress: bool = True
    """Show a progress bar (env steps, updates/s, last eval)."""
    tensorboard: bool = False
    """Also write TensorBoard scalars (needs the ``tensorboard`` extra)."""


@dataclass
class Config:
    """Root of the schema. Top-level keys are shared by every suite."""

    task: str = "gym/CartPole-v1"
    """What to train on: ``gym/<id>``, ``atari/<Game>``, ``dmc/<domain>-<task>``, a registered task name
    (``ezrobot tasks list``) or a task file ``path/to/task.py``."""
    env_steps: int = 10_000
    """Total budget in environment (simulator) steps = agent steps x action repeat."""
    seed: int = 0
    """Seed of every random number generator of the run."""
    run_dir: str = ""
    """Run directory (empty: ``runs/<experiment>-<task>-s<seed>``). Re-running on it resumes."""
    experiment: str = "cartpole"
    """Preset the run started from (chosen with ``experiment=<name>``; informational once composed)."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:<i>``."""
    threads: int = 0
    """torch CPU threads (0: torch's default). Use 1 for small nets or when another job shares the CPU: idle
    intra-op threads spin and can slow a run several-fold."""
    init_from: str = ""
    """Run directory of a trained source run: this run starts from the newest intact checkpoint of it (the
    parts ``adapt.reuse`` names), as ``ezrobot finetune`` does; a resumed run continues from its own
    checkpoint instead. Saved as an absolute path. Empty: train from scratch."""
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


_POSITIVE = (
    "env_steps", "train.batch_size", "train.unroll_steps", "train.td_steps", "train.num_envs",
    "eval.episodes", "eval.interval", "log.checkpoint_interval", "optim.lr", "replay.capacity",
)
_NON_NEGATIVE = (
    "train.start_transitions", "train.extra_updates", "eval.num_simulations", "train.target_update_interval",
    "train.selfplay_update_interval", "optim.warmup_steps", "threads", "seed", "train.consistency_start",
    "train.variance_loss_coeff", "train.variance_floor", "train.model_gradient_coeff", "train.actor_coeff",
    "train.actor_entropy_coeff",
    "env.action_repeat", "env.max_episode_steps", "env.frame_stack", "env.noop_max", "env.max_train_frames",
)


def _get(cfg: Config, dotted: str):
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def validate(cfg: Config) -> None:
    """Check cross-field constraints that the types cannot express.

    Raises:
        ConfigError: naming the first bad field, its value and what is allowed.
    """
    try:
        check_choices(cfg)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    for key in _POSITIVE:
        if not _get(cfg, key) > 0:
            raise ConfigError(f"{key}={_get(cfg, key)!r} must be > 0")
    for key in _NON_NEGATIVE:
        if _get(cfg, key) < 0:
            zero = " (0: the suite's default)" if key.startswith("env.") else ""
            raise ConfigError(f"{key}={_get(cfg, key)!r} must be >= 0{zero}")
    if cfg.train.reanalyze_simulations < 0:
        raise ConfigError(f"train.reanalyze_simulations={cfg.train.reanalyze_simulations!r} must be >= 0 "
                          "(0: search.num_simulations)")
    if cfg.train.policy_from_reanalysis_only and cfg.train.reanalyze_ratio == 0 \
            and cfg.train.value_target != "mixed":
        raise ConfigError("train.policy_from_reanalysis_only=true with train.reanalyze_ratio=0 leaves no policy "
                          "targets; set train.reanalyze_ratio > 0")
    if cfg.train.policy_loss in ("importance", "split") and (cfg.train.reanalyze_search == "tree"
                                                             or not cfg.train.policy_from_reanalysis_only):
        raise ConfigError(f"train.policy_loss={cfg.train.policy_loss!r} needs fresh look-ahead targets only; set "
                          "train.reanalyze_search=one_step and train.policy_from_reanalysis_only=true")
    if cfg.train.reanalyze_search == "critic" and cfg.model.critic_heads == 0:
        raise ConfigError("train.reanalyze_search='critic' needs the critic; set model.critic_heads (e.g. 2) or "
                          "train.reanalyze_search=one_step")
    if cfg.train.actor_coeff > 0 and cfg.model.critic_heads == 0:
        raise ConfigError(f"train.actor_coeff={cfg.train.actor_coeff!r} needs the critic; set model.critic_heads "
                          "(e.g. 2) or train.actor_coeff=0")
    _validate_entropy_target(cfg)
    if not 0.5 <= cfg.train.policy_action_clip < 1.0:
        raise ConfigError(f"train.policy_action_clip={cfg.train.policy_action_clip!r} must be in [0.5, 1)")
    if not 0.0 <= cfg.train.reanalyze_ratio <= 1.0:
        raise ConfigError(f"train.reanalyze_ratio={cfg.train.reanalyze_ratio!r} must be in [0, 1]")
    if not cfg.train.replay_ratio > 0:
        raise ConfigError(f"train.replay_ratio={cfg.train.replay_ratio!r} must be > 0 (updates per agent step)")
    if len(cfg.train.visit_temperatures) != len(cfg.train.temperature_milestones) + 1:
        raise ConfigError("train.visit_temperatures must have one more entry than train.temperature_milestones")
    if not cfg.init_from and cfg.adapt != AdaptConfig():
        changed = next(k for k, v in vars(cfg.adapt).items() if v != getattr(AdaptConfig(), k))
        raise ConfigError(f"adapt.{changed}={getattr(cfg.adapt, changed)!r} acts only in a run initialised from "
                          "another: set init_from=RUN_DIR (or use ezrobot finetune from=RUN_DIR)")
    if cfg.init_from and os.path.abspath(cfg.init_from) == os.path.abspath(cfg.run_dir or default_run_dir(cfg)):
        raise ConfigError(f"init_from={cfg.init_from!r} is this run's own run_dir; choose another run_dir")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", cfg.device):
        raise ConfigError(f"device={cfg.device!r} is not allowed; use auto, cpu, cuda or cuda:<index>")
    _validate_nested(cfg)


def _validate_entropy_target(cfg: Config) -> None:
    target = list(cfg.train.entropy_target)
    if not target:
        return
    if len(target) != 2 or not all(math.isfinite(float(x)) for x in target):
        raise ConfigError(f"train.entropy_target={target!r} must be [start, end] in nats per action dimension "
                          "(e.g. [0.5,-1.0]) or [] for the fixed train.entropy_coeff")
    if not cfg.train.entropy_coeff > 0:
        raise ConfigError(f"train.entropy_coeff={cfg.train.entropy_coeff!r} must be > 0 with train.entropy_target "
                          "(it is the learnt coefficient's starting value)")


def _validate_nested(cfg: Config) -> None:
    """Run the sub-configs' own validators where their modules provide one."""
    for name in ("search", "model", "replay", "adapt", "distributed"):
        sub = getattr(cfg, name)
        check = getattr(sub, "validate", None)
        if callable(check):
            try:
                check()
            except ValueError as err:
                raise ConfigError(f"{name}: {err}") from None


def absolute_task(task: str) -> str:
    """An existing task file's path made absolute (a saved run config finds it from anywhere); others unchanged."""
    return os.path.abspath(task) if task.endswith(".py") and os.path.isfile(task) else task


def default_run_dir(cfg: Config) -> str:
    """``runs/<experiment>-<task>[-from-<source run>]-s<seed>``, the task (file name) made filesystem-safe."""
    name = os.path.basename(cfg.task) if cfg.task.endswith(".py") else cfg.task
    task = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace(".py", "")).strip("_")
    source = f"-from-{os.path.basename(os.path.normpath(cfg.init_from))}" if cfg.init_from else ""
    return os.path.join("runs", f"{cfg.experiment}-{task}{source}-s{cfg.seed}")


def start_transitions(cfg: Config) -> int:
    """Agent steps before the first update: ``adapt.start_transitions`` if initialised and >= 0, else train's."""
    if cfg.init_from and cfg.adapt.start_transitions >= 0:
        return int(cfg.adapt.start_transitions)
    return int(cfg.train.start_transitions)


@dataclass(frozen=True)
class Derived:
    """Values computed from the config and the environment spec, in one place.

    Attributes:
        agent_steps: Agent-step budget (env_steps // action_repeat).
        total_updates: Updates over the whole run (collection + extra updates).
        td_horizon_T: T of the off-policy correction, in transitions (the agent-step budget).
        temperature_steps: Update counts at which the visit temperature changes.
    """

    agent_steps: int
    total_updates: int
    td_horizon_T: int
    temperature_steps: tuple


def derive(cfg: Config, action_repeat: int) -> Derived:
    """Compute derived values. ``action_repeat`` comes from the environment's spec."""
    agent_steps = max(1, cfg.env_steps // action_repeat)
    learn_steps = max(0, agent_steps - start_transitions(cfg))
    total_updates = int(round(learn_steps * cfg.train.replay_ratio)) + cfg.train.extra_updates
    temps = tuple(int(m * total_updates) for m in cfg.train.temperature_milestones)
    return Derived(agent_steps, max(1, total_updates), agent_steps, temps)


def visit_temperature(cfg: Config, derived: Derived, updates: int) -> float:
    """Self-play visit temperature after ``updates`` updates (switched at ``derived.temperature_steps``)."""
    return cfg.train.visit_temperatures[sum(updates >= s for s in derived.temperature_steps)]


def linear_over_updates(start: float, end: float, updates: int, total_updates: int) -> float:
    """``start`` moved linearly to ``end`` over ``total_updates`` updates, held at ``end`` after them."""
    return start + (end - start) * min(1.0, updates / max(1, total_updates))


def importance_beta(cfg: Config, derived: Derived, updates: int) -> float:
    """Importance-sampling exponent after ``updates`` updates: ``replay.beta_start`` linearly to ``beta_end``."""
    return linear_over_updates(cfg.replay.beta_start, cfg.replay.beta_end, updates, derived.total_updates)
