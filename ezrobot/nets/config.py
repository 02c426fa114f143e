"""Model configuration (the ``model`` config group) and preset resolution.

Every size field defaults to ``None``, meaning "take it from the preset". :func:`resolve_preset` is the one
place where the preset, the explicit overrides and the environment spec are combined into a fully filled
:class:`ModelConfig`; the networks only ever read resolved configs.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ezrobot.schema import check_choices, choice

PRESETS = ("paper", "small", "custom")
NORMS = ("batch", "layer", "none")
LATENT_NORMS = ("minmax", "none")
PIXEL_LATENTS = ("spatial", "vector")
FAMILIES = ("conv", "mlp")


@dataclass
class ModelConfig:
    """Network sizes. ``None`` fields are filled from ``preset`` by :func:`resolve_preset`."""

    preset: str = choice("paper", PRESETS)
    """``paper`` (EfficientZero Atari conv net / EZ-V2 proprio MLP), ``small`` (cheap CPU variant:
    projection 256/64, LSTM 64) or ``custom`` (no preset: every size field below must be set)."""
    channels: Optional[int] = None
    """Conv trunk width after downsampling (paper 64; the stem uses half of it)."""
    blocks: Optional[int] = None
    """Residual blocks in each of representation tail, dynamics and prediction trunk (paper 1 conv)."""
    downsample: Optional[bool] = None
    """Conv: stride-2 stem, stride-2 block and two stride-2 average pools (96 px -> 6x6). Off: full resolution."""
    reduced_channels: Optional[int] = None
    """Conv: channels of the 1x1 convs feeding the value, policy and value-prefix heads (paper 16)."""
    latent_dim: Optional[int] = None
    """MLP: latent state size (EZ-V2 proprio 128)."""
    mlp_hidden: Optional[int] = None
    """MLP: width of the pre-LayerNorm residual blocks."""
    head_hidden: Optional[List[int]] = None
    """Hidden sizes of the value, value-prefix/reward and policy head MLPs (paper conv [32])."""
    lstm_hidden: Optional[int] = None
    """Value-prefix LSTM hidden size (paper 512, small 64)."""
    projection_dim: Optional[int] = None
    """SimSiam projector hidden and output size (paper 1024, small 256)."""
    predictor_hidden: Optional[int] = None
    """SimSiam predictor hidden size (paper 512, small 64)."""
    value_support_bins: Optional[int] = None
    """Atoms of the value support (paper conv 601; EZ-V2 proprio 51)."""
    value_support_max: Optional[float] = None
    """Half-width of the value support in h-space: atoms span [-max, max] (paper conv 300; the MLP presets
    size it from the task's reward bound, see ``support_half_widths``: h(200) = 13.2 for DMControl)."""
    reward_support_bins: Optional[int] = None
    """Atoms of the value-prefix (or reward) support."""
    reward_support_max: Optional[float] = None
    """Half-width of the value-prefix (or reward) support in h-space (paper conv 300; the MLP presets size it
    from the task's reward bound: h(2) = 0.73 for DMControl with action repeat 2)."""
    use_value_prefix: Optional[bool] = None
    """Predict the value prefix with an LSTM (EfficientZero) instead of the per-step reward (None: on for
    pixel observations, off for vectors as in EZ-V2 proprio)."""
    action_embedding: Optional[int] = None
    """0: raw action (conv: one plane a/|A| or D planes of a; MLP: one-hot or a). >0: a learned linear
    embedding of that size (conv: as planes; EZ-V2 vision 16)."""
    norm: Optional[str] = choice(None, NORMS)
    """Normalisation layers: ``batch`` (paper conv), ``layer`` (EZ-V2 MLP; GroupNorm(1) for convs) or
    ``none``."""
    projection_norm: Optional[str] = choice(None, NORMS)
    """Normalisation of the SimSiam projector and predictor: ``batch`` (EfficientZero, EZ-V2, LightZero:
    BatchNorm1d after every projector layer, the output included, which keeps the projections from
    collapsing to a constant), ``layer`` or ``none`` (between hidden layers only). None: ``batch`` for image
    observations; ``norm`` for vector observations (the measured ``dmc_proprio`` / ``robot_proprio`` runs
    use it; EZ-V2's proprio net uses ``batch``)."""
    obs_symlog: bool = False
    """Vector observations only: squash them with symlog(x) = sign(x) log(1 + |x|) before the first layer
    (DreamerV3), so that large entries (joint velocities of tens) do not swamp small ones (angles,
    positions). Must stay false for image observations."""
    obs_running_norm: bool = False
    """Vector observations only: standardise each entry by a running mean and variance of the observations
    the learner trains on (updated in training mode, carried in the checkpoint), as EfficientZero V2's
    proprio representation does; the acting and target copies use the statistics they were sent. Applied
    after ``obs_symlog``. Must stay false for image observations."""
    latent_norm: str = choice("minmax", LATENT_NORMS)
    """Normalisation of every latent state, after the representation and after each dynamics step:
    ``minmax`` scales each sample to [0, 1] over its entries (MuZero, EfficientZero); ``none`` leaves it
    as the network produced it (EfficientZero V2's proprio net, whose residual MLPs are pre-LayerNorm)."""
    critic_heads: int = 0
    """Continuous actions: size of an ensemble of Q(s, a) heads on the root latent and the action (SAC,
    TD-MPC2), each an MLP with two hidden layers of ``mlp_hidden`` units (256 without one) over the value
    support, trained on the replay's actions towards the value target of the same row (the n-step return
    that starts with that action), weighted by ``train.value_loss_coeff``. ``train.actor_coeff`` moves the
    policy along their minimum. 0: no critic (EfficientZero, EZ-V2)."""
    pixel_latent: str = choice("spatial", PIXEL_LATENTS)
    """Image observations only. ``spatial``: EfficientZero's conv latent ``[c, h, w]`` with conv dynamics and
    prediction. ``vector``: the conv trunk's output is flattened into a ``latent_dim`` vector by the MLP
    representation, and dynamics, reward and prediction are the MLP family's (the preset then also fills
    ``latent_dim`` and ``mlp_hidden`` from the MLP preset and uses ``norm=layer``)."""

    def validate(self) -> None:
        """Check field values that types cannot express.

        Raises:
            ValueError: naming the bad field, its value and what is allowed.
        """
        check_choices(self, "model.")
        for name in ("channels", "blocks", "reduced_channels", "latent_dim", "mlp_hidden", "lstm_hidden",
                     "projection_dim", "predictor_hidden"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"model.{name}={value!r} must be >= 1")
        for name in ("value_support_bins", "reward_support_bins"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise ValueError(f"model.{name}={value!r} must be >= 2")
        for name in ("value_support_max", "reward_support_max"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"model.{name}={value!r} must be > 0 (half-width in h-space)")
        if self.critic_heads < 0:
            raise ValueError(f"model.critic_heads={self.critic_heads!r} must be >= 0 (0: no critic)")
        if self.action_embedding is not None and self.action_embedding < 0:
            raise ValueError(f"model.action_embedding={self.action_embedding!r} must be >= 0")
        if self.head_hidden is not None and any(int(s) < 1 for s in self.head_hidden):
            raise ValueError(f"model.head_hidden={list(self.head_hidden)!r} must hold sizes >= 1")


_CONV_PAPER = dict(channels=64, blocks=1, downsample=True, reduced_channels=16, head_hidden=[32],
                   lstm_hidden=512, projection_dim=1024, predictor_hidden=512, value_support_bins=601,
                   value_support_max=300.0, reward_support_bins=601, reward_support_max=300.0,
                   action_embedding=0, norm="batch")
_CONV_SMALL = dict(_CONV_PAPER, channels=32, lstm_hidden=64, projection_dim=256, predictor_hidden=64,
                   value_support_bins=51, value_support_max=25.0, reward_support_bins=51,
                   reward_support_max=25.0)
_MLP_PAPER = dict(latent_dim=128, mlp_hidden=256, blocks=2, head_hidden=[256], lstm_hidden=512,
                  projection_dim=256, predictor_hidden=128, value_support_bins=51, reward_support_bins=51,
                  action_embedding=64, norm="layer")
# The MLP presets take value_support_max and reward_support_max from the task (see support_half_widths).
_MLP_SMALL = dict(_MLP_PAPER, latent_dim=64, mlp_hidden=128, blocks=1, head_hidden=[64], lstm_hidden=64,
                  projection_dim=128, predictor_hidden=64, action_embedding=32)
_PRESET_TABLE = {
    ("paper", "conv"): _CONV_PAPER, ("small", "conv"): _CONV_SMALL,
    ("paper", "mlp"): _MLP_PAPER, ("small", "mlp"): _MLP_SMALL,
}
_REQUIRED = {
    "conv": ("channels", "blocks", "downsample", "reduced_channels", "head_hidden", "lstm_hidden",
             "projection_dim", "predictor_hidden", "value_support_bins", "value_support_max",
             "reward_support_bins", "reward_support_max", "action_embedding", "norm"),
    "mlp": ("latent_dim", "mlp_hidden", "blocks", "head_hidden", "lstm_hidden", "projection_dim",
            "predictor_hidden", "value_support_bins", "value_support_max", "reward_support_bins",
            "reward_support_max", "action_embedding", "norm"),
}


def model_family(spec) -> str:
    """``conv`` for uint8 image observations ``[C, H, W]``, ``mlp`` for float vectors ``[D]``.

    Raises:
        ValueError: for observation shapes neither family accepts.
    """
    shape = tuple(spec.obs_shape)
    if spec.obs_dtype == "uint8":
        if len(shape) != 3:
            raise ValueError(f"uint8 observations must be [C, H, W], got shape {shape}")
        return "conv"
    if len(shape) != 1:
        raise ValueError(f"vector observations must be [D], got shape {shape} (dtype {spec.obs_dtype})")
    return "mlp"


UNBOUNDED_SUPPORT_MAX = 25.0
"""h-space half-width of both supports of the MLP presets for a task that does not bound its rewards."""


def _h(x: float) -> float:
    """The MuZero value transform h(x) = sqrt(x + 1) - 1 + 0.001 x for x >= 0 (see ``ezrobot.transforms``)."""
    return math.sqrt(x + 1.0) - 1.0 + 0.001 * x


def support_half_widths(spec, use_value_prefix: bool) -> Tuple[float, float]:
    """``(value_support_max, reward_support_max)`` of the MLP presets, in h-space, sized from the task.

    A task whose rewards per agent step lie in ``[-b, b]`` (``spec.reward_bound``) has values within
    ``V = b * min(1 / (1 - discount), max_episode_steps)``. The value support spans ``[-h(V), h(V)]`` and the
    reward support ``[-h(b), h(b)]`` (``[-h(V), h(V)]`` for a value prefix, a sum of several rewards), so that
    the 51 atoms resolve the differences the search compares: a DMControl reward with action repeat 2
    lies in [0, 2] and gets atoms 0.03 apart in h-space, as in EfficientZero V2's released DMC config,
    instead of 1.0 with a task-blind [-25, 25]. Unbounded tasks keep ``UNBOUNDED_SUPPORT_MAX`` for both.
    """
    bound = getattr(spec, "reward_bound", None)
    if bound is None or not bound > 0:
        return UNBOUNDED_SUPPORT_MAX, UNBOUNDED_SUPPORT_MAX
    horizon = spec.max_episode_steps if spec.discount >= 1.0 else min(1.0 / (1.0 - spec.discount),
                                                                        spec.max_episode_steps)
    value_max = _h(float(bound) * float(horizon))
    return value_max, value_max if use_value_prefix else _h(float(bound))


def _as_model_config(cfg) -> ModelConfig:
    """Accept a ModelConfig or an OmegaConf DictConfig of one."""
    if isinstance(cfg, ModelConfig):
        return dataclasses.replace(cfg)
    try:
        from omegaconf import OmegaConf
        obj = OmegaConf.to_object(cfg)
    except Exception as err:  # not an OmegaConf node
        raise TypeError(f"expected a ModelConfig, got {type(cfg).__name__}") from err
    if not isinstance(obj, ModelConfig):
        obj = ModelConfig(**obj)
    return obj


def resolve_preset(cfg, spec) -> ModelConfig:
    """Fill every ``None`` field of ``cfg`` from its preset for the family that ``spec`` selects.

    Explicitly set fields always win over the preset. ``use_value_prefix`` defaults to on for pixel
    observations and off for vectors.

    Args:
        cfg: A :class:`ModelConfig` (or an OmegaConf node of one).
        spec: The environment's ``EnvSpec``.

    Returns:
        A new, fully resolved :class:`ModelConfig`.

    Raises:
        ValueError: for an unknown preset or norm, a bad size, or (``custom``) a missing required field.
    """
    out = _as_model_config(cfg)
    out.validate()
    family = model_family(spec)
    for name in ("obs_symlog", "obs_running_norm"):
        if getattr(out, name) and family == "conv":
            raise ValueError(f"model.{name}=true transforms vector observations; this task has image "
                             f"observations (use model.{name}=false)")
    vector = family == "conv" and out.pixel_latent == "vector"
    if out.preset != "custom":
        preset = dict(_PRESET_TABLE[(out.preset, family)])
        if vector:
            mlp = _PRESET_TABLE[(out.preset, "mlp")]
            preset.update(latent_dim=mlp["latent_dim"], mlp_hidden=mlp["mlp_hidden"], norm="layer")
        for name, value in preset.items():
            if getattr(out, name) is None:
                setattr(out, name, list(value) if isinstance(value, list) else value)
        if family == "mlp":
            value_max, reward_max = support_half_widths(spec, bool(out.use_value_prefix))
            out.value_support_max = value_max if out.value_support_max is None else out.value_support_max
            out.reward_support_max = reward_max if out.reward_support_max is None else out.reward_support_max
    required = _REQUIRED[family] + (("latent_dim", "mlp_hidden") if vector else ())
    missing = [name for name in required if getattr(out, name) is None]
    if missing:
        raise ValueError(f"model.preset=custom needs these fields set for the {family} family: "
                         f"{', '.join(missing)}")
    if out.use_value_prefix is None:
        out.use_value_prefix = family == "conv"
    if out.projection_norm is None:
        out.projection_norm = "batch" if family == "conv" else out.norm
    out.head_hidden = [int(s) for s in out.head_hidden]
    out.validate()
    return out
