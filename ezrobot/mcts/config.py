"""Search configuration (the ``search`` config group): an OmegaConf structured config.

Defaults follow docs/REFERENCES.md §1-3: EfficientZero pUCT constants (c1 = 1.25, c2 = 19652, Dirichlet 0.3 /
0.25, value-prefix horizon 5, min-max floor 0.01) and the EfficientZero V2 Gumbel / continuous settings
(K = 16 root samples of which 12 come from a sigma x 3 proposal during training, 2 samples at interior
nodes, c_visit = 50, c_scale = 0.1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

VARIANTS = ("puct", "gumbel")
Q_NORMALIZATIONS = ("tree", "node")


@dataclass
class SearchConfig:
    """Tree search settings. Continuous action spaces use the sampled version of either variant."""

    variant: str = field(default="puct", metadata={"choices": VARIANTS})  # validated with the schema's choices
    """``puct`` (EfficientZero pUCT / Sampled MuZero) or ``gumbel`` (Gumbel MuZero / EZ-V2 search)."""
    num_simulations: int = 50
    """N: simulations per search; simulation s creates tree node (and latent slot) s + 1."""
    num_sampled_actions: int = 16
    """K: actions sampled at the root (and, for pUCT, at every expanded node) in continuous spaces."""
    num_sampled_actions_interior: int = 2
    """Gumbel, continuous: actions sampled at interior (non-root) nodes (EZ-V2: 2)."""
    num_sampled_actions_widened: int = -1
    """Continuous, training only: how many of the K root samples come from the widened proposal
    (same mean, std x ``widen_std_scale``); the rest come from the policy. 0 disables widening; -1 takes
    3/4 of K, rounded (EZ-V2: 12 of 16). See :meth:`widened_count`."""
    widen_std_scale: float = 3.0
    """Standard-deviation factor of the widened root proposal (EZ-V2: 3)."""
    eval_mean_action: bool = True
    """Continuous, evaluation only: the first of the K root samples is the policy's mean action tanh(mu)
    (its noise is zeroed), so the search can always pick the deterministic policy; the other K - 1 are
    sampled as usual. False: all K sampled (EZ-V2)."""
    sampled_gumbel_noise: bool = False
    """Gumbel, continuous, training: add Gumbel noise to the K root samples before top-m and sequential
    halving. False (EZ-V2's released search): the K samples are already random draws from the proposal, so
    the search keeps the best completed-Q survivor; with noise the chosen action a* becomes close to a
    uniform pick among the samples (most of them from the widened proposal), and the -log pi(a*) policy
    loss then fits the widened proposal and inflates sigma (docs/RESULTS.md, walker diagnosis). With
    ``sampled_gumbel_importance`` the roles turn: without noise a flat Q makes a* the sample nearest the
    policy mean and sigma shrinks each generation; with noise a* is an importance draw from pi
    (tests/test_search_flat_q.py). With no widened samples and the noise on, a* is a draw
    from the improved policy pi' over K draws from pi. Discrete Gumbel search always uses the noise."""
    sampled_gumbel_importance: bool = False
    """Gumbel, continuous, training with a widened root proposal: give the K root samples the logits
    log(pi / beta) of Sampled MuZero (beta the mixture of pi and the widened proposal, as pUCT always does)
    instead of EZ-V2's uniform logits. Then g + logits ranks the samples as draws from pi rather than from
    the wider beta, so a* and the improved policy pi' = softmax(logits + sigma(q)) improve on pi, and the
    policy loss does not fit the widened proposal."""
    gumbel_top_m: int = 16
    """Gumbel: m, the number of root actions kept by Gumbel top-m (capped at the number of actions)."""
    pb_c_base: float = 19652.0
    """pUCT c2."""
    pb_c_init: float = 1.25
    """pUCT c1."""
    dirichlet_alpha: float = 0.3
    """pUCT, training: concentration of the root Dirichlet noise."""
    root_exploration_fraction: float = 0.25
    """pUCT, training: weight of the Dirichlet noise in the root prior (0 disables it)."""
    value_prefix_horizon: int = 5
    """The value-prefix LSTM state is reset at tree depths that are multiples of this horizon."""
    c_visit: float = 50.0
    """Gumbel: sigma(q) = (c_visit + max_b N(b)) * c_scale * q."""
    c_scale: float = 0.1
    """Gumbel: see ``c_visit``."""
    min_max_floor: float = 0.01
    """Smallest range used by the min-max normalisation of Q values."""
    q_normalization: str = field(default="tree", metadata={"choices": Q_NORMALIZATIONS})
    """Gumbel: the range that min-max normalises the Q values fed to sigma(q). ``tree``: the min and max Q
    over every node of the tree (EfficientZero, EZ-V2). ``node``: the min and max of the node's own
    children's completed Q values (Gumbel MuZero as in mctx), so the candidates of one node always spread
    over [0, 1] and sigma(q) separates them even when the tree's range is wide. pUCT always uses ``tree``."""
    max_depth: int = 0
    """Depth bound of the tree (root depth 0): nodes at this depth are terminal, and a simulation that
    reaches one backs up its stored value again instead of expanding. 0: no bound (num_simulations)."""

    def validate(self) -> None:
        """Check every field.

        Raises:
            ValueError: naming the bad field, its value and what is allowed.
        """
        positive_ints = ("num_simulations", "num_sampled_actions", "num_sampled_actions_interior",
                         "gumbel_top_m", "value_prefix_horizon")
        for name in positive_ints:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        if not -1 <= self.num_sampled_actions_widened <= self.num_sampled_actions:
            raise ValueError(f"num_sampled_actions_widened={self.num_sampled_actions_widened!r} must be -1 (3/4 of K) "
                             f"or in [0, num_sampled_actions={self.num_sampled_actions}]")
        for name in ("widen_std_scale", "pb_c_base", "dirichlet_alpha", "c_scale", "min_max_floor"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be > 0")
        for name in ("pb_c_init", "c_visit"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")
        if not 0.0 <= self.root_exploration_fraction <= 1.0:
            raise ValueError(f"root_exploration_fraction={self.root_exploration_fraction!r} must be in [0, 1]")
        if self.max_depth < 0:
            raise ValueError(f"max_depth={self.max_depth!r} must be >= 0 (0: no bound)")

    @property
    def depth_bound(self) -> int:
        """The effective depth bound: ``max_depth``, or ``num_simulations`` when it is 0."""
        return self.max_depth if self.max_depth > 0 else self.num_simulations

    def widened_count(self) -> int:
        """Root samples drawn from the widened proposal during training (resolves -1 to round(3K/4))."""
        if self.num_sampled_actions_widened < 0:
            return int(round(0.75 * self.num_sampled_actions))
        return int(self.num_sampled_actions_widened)
