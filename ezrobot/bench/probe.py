"""``ezrobot bench probe RUN_DIR``: does a trained DMC proprio agent's search see which action is better?

From states along one evaluation episode (deterministic policy mean, reset seed ``--seed``), the probe runs
the training search and then measures each of its K root candidates in the simulator: the physics is put
back into the state, the candidate is applied, and the policy mean is followed for ``--horizon`` agent steps
(Monte-Carlo Q, discounted with the task's discount). It reports, per state and as means:

- ``spearman_search_mc``: rank correlation of the search's completed Q with the Monte-Carlo Q over the
  visited candidates (1: the search ranks candidates as the simulator does; 0: no information);
- ``spearman_model_mc``: the same for the model's one-step Q r̂ + γ V(g(s, a)) of every candidate;
- ``spearman_real_next_mc``: the same with the real next state, r + γ V(h(o')): the value function alone,
  with the dynamics taken out;
- ``spearman_critic_mc``: the same for the critic's min-over-heads Q(s, a) (runs with ``model.critic_heads``
  > 0; NaN otherwise): a Q learnt directly from the replay's actions;
- ``latent_error_ratio``: mean ||g(s, a) − h(o')|| of the predicted next latents over the mean pairwise
  distance of the real next latents (above 1: the dynamics error is larger than what separates candidates);
- ``mc_gain_chosen`` / ``mc_gain_best``: Monte-Carlo Q of the search's choice / of the best candidate
  minus that of the policy mean; ``mc_std``, ``search_q_std``, ``model_q_std`` and ``real_next_q_std``: the
  spread of each Q over the candidates (a Q that ranks badly with a spread far below ``mc_std`` is blind to
  the action; one with a comparable spread is noisy);
- ``value_return_corr``: correlation of the root value with the realised discounted return-to-go along the
  episode (its last ``--horizon`` steps left out), with the two means;
- ``projection_cos_states``: mean cosine between the SimSiam projections of the probed states (near 1: the
  projections have collapsed and the consistency loss is satisfied whatever the dynamics predicts);
- ``projection_top1``: how often the predicted projection of g(s, a_i) is closest (cosine) to candidate i's
  real next state among the K (chance 1/K): whether the consistency loss can tell the actions apart;
- ``target_spread``: root mean square of (atanh a* − mu) / sigma over the action dimensions of the search's
  chosen action a*, over ``--repeats`` training searches per state (1 when a* is distributed as the policy;
  above 1 the policy target −log pi(a*) widens the policy, below 1 it narrows it), and ``widened_chosen``,
  the fraction of those searches whose a* is one of the root's widened samples (0 without widened samples);
- with ``--stochastic-rollouts R`` > 0, each candidate is also followed by R rollouts that sample the policy
  (tanh Gaussian, the policy's own sigma) instead of its mean, and averaged (``mc_stoch``): the candidate's
  value under the policy the value function is trained for. ``mc_stoch_std`` is their spread,
  ``mc_stoch_sem`` the standard error of one candidate's mean (sampling noise; R >= 2) and
  ``mc_stoch_signal`` = sqrt(max(0, spread² − sem²)) the spread left once that noise is taken out,
  ``spearman_mc_stoch_mc`` the agreement of the two Monte-Carlo rankings (low: the deterministic ranking is
  a property of one path, not of the candidates), and ``spearman_{search,model,real_next}_mc_stoch`` rank
  the agent's Qs against it;
- ``policy_mean_abs``, ``policy_std``, ``policy_saturation``: along the probed episode, the mean |mu|
  (pre-tanh; the head bounds it at 5), the mean sigma, and the expected fraction of action dimensions that
  a sample from the policy puts beyond |a| > 0.99 (bang-bang control);
- ``widened_mc_gap`` / ``widened_search_gap``: mean Monte-Carlo Q / completed search Q of the root's samples
  from the policy minus that of its widened samples (NaN without widened samples): whether the wider
  actions are truly worse, and whether the search sees it.
"""
from __future__ import annotations

import argparse
import json
import math
from typing import Dict, List

import numpy as np
import torch

from ezrobot.distributions import ACTION_CLIP, head_to_mean_std
from ezrobot.envs import make_env
from ezrobot.runs import load_run

SATURATED = 0.99
"""``policy_saturation`` counts action dimensions with |a| above this."""


def _parse(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ezrobot bench probe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a DMC proprio run directory")
    p.add_argument("--checkpoint", default=None, help="checkpoint directory (default: the newest)")
    p.add_argument("--states", type=int, default=8, help="states probed along the episode")
    p.add_argument("--horizon", type=int, default=60, help="agent steps of each Monte-Carlo rollout")
    p.add_argument("--seed", type=int, default=123, help="reset seed of the episode and seed of the searches")
    p.add_argument("--repeats", type=int, default=16, help="training searches per state for target_spread")
    p.add_argument("--stochastic-rollouts", type=int, default=0,
                   help="rollouts per candidate that sample the policy (0: none)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    if args.states < 1 or args.horizon < 1 or args.repeats < 1:
        p.error(f"--states={args.states}, --horizon={args.horizon} and --repeats={args.repeats} must be >= 1")
    if args.stochastic_rollouts < 0:
        p.error(f"--stochastic-rollouts={args.stochastic_rollouts} must be >= 0")
    return args


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if ra.std() > 0 and rb.std() > 0 else float("nan")


def _nan_mean(values: List[float]) -> float:
    """Mean of the finite entries (NaN when there are none, without numpy's empty-slice warning)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


@torch.no_grad()
def _policy_mean(model, obs: np.ndarray):
    """(tanh(mu) [D], root value) of one observation."""
    _, v_logits, pol = model.initial_inference(torch.as_tensor(obs[None], dtype=torch.float32))
    mean, _ = head_to_mean_std(pol)
    return torch.tanh(mean)[0].numpy(), float(model.value_support.logits_to_scalar(v_logits)[0])


@torch.no_grad()
def _policy_sample(model, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """tanh(mu + sigma * eps) [D] for one observation."""
    _, _, pol = model.initial_inference(torch.as_tensor(obs[None], dtype=torch.float32))
    mean, std = head_to_mean_std(pol)
    eps = rng.standard_normal(mean.shape[-1])
    return np.tanh(mean[0].numpy() + std[0].numpy() * eps)


def _mc_q(env, state, action, model, horizon: int, discount: float, rng=None) -> float:
    """Discounted return of ``action`` then ``horizon - 1`` steps of the policy mean (or, given ``rng``, of
    actions sampled from the policy)."""
    env.restore_physics_state(state)
    total, weight = 0.0, 1.0
    for _ in range(horizon):
        obs, reward, terminated, _, _ = env.step(action)
        total += weight * reward
        weight *= discount
        if terminated:
            break
        action = _policy_mean(model, obs)[0] if rng is None else _policy_sample(model, obs, rng)
    return total


@torch.no_grad()
def _one_step(env, state, obs, cands, model, discount: float) -> Dict[str, np.ndarray]:
    """Model one-step Q, real-next-state Q and the latent statistics for candidates ``[K, D]``."""
    rewards, nexts = [], []
    for a in cands:
        env.restore_physics_state(state)
        nxt, reward, *_ = env.step(a)
        rewards.append(reward)
        nexts.append(nxt)
    acts = torch.as_tensor(cands, dtype=torch.float32)
    z, _, _ = model.initial_inference(torch.as_tensor(np.repeat(obs[None], len(cands), 0), dtype=torch.float32))
    z_pred, r_logits, _, v_logits, _ = model.recurrent_inference(z, acts, None)
    z_real, v_real, _ = model.initial_inference(torch.as_tensor(np.stack(nexts), dtype=torch.float32))
    q_model = model.reward_support.logits_to_scalar(r_logits) + discount * model.value_support.logits_to_scalar(v_logits)
    q_real = torch.as_tensor(rewards) + discount * model.value_support.logits_to_scalar(v_real)
    pairs = torch.triu_indices(len(cands), len(cands), 1)
    match = _cosines(model.project(z_pred, with_predictor=True), model.project(z_real, with_predictor=False))
    top1 = float((match.argmax(dim=1) == torch.arange(len(cands))).float().mean())
    spread = torch.cdist(z_real, z_real)[pairs[0], pairs[1]].mean()
    err = (z_pred - z_real).flatten(1).norm(dim=-1).mean()
    q_critic = model.critic_q(z, acts).min(dim=0).values.numpy() if model.critic is not None else None
    return {"q_model": q_model.numpy(), "q_real": q_real.numpy(), "q_critic": q_critic,
            "latent_error_ratio": float(err / spread),
            "projection_top1": top1, "projection": model.project(z[:1], with_predictor=False)[0]}


@torch.no_grad()
def _root_targets(agent, model, obs: np.ndarray, repeats: int, rng: np.random.Generator) -> Dict[str, float]:
    """``target_spread`` and ``widened_chosen`` of ``repeats`` training searches of one observation."""
    _, _, pol = model.initial_inference(torch.as_tensor(obs[None], dtype=torch.float32))
    mean, std = (t[0].double().numpy() for t in head_to_mean_std(pol))
    out = agent.search(model, np.repeat(obs[None], repeats, 0), rng, train=True)
    chosen = np.arctanh(np.clip(out.action.astype(np.float64), -ACTION_CLIP, ACTION_CLIP))
    k = out.q_values.shape[1]
    return {"target_spread": float(np.sqrt((((chosen - mean) / std) ** 2).mean())),
            "widened_chosen": float((out.action_index >= k - agent.cfg.widened_count()).mean())}


def _widened_gap(values: np.ndarray, widened: int) -> float:
    """Mean of ``values [K]`` over the policy's samples minus that over the last ``widened`` (NaN if none)."""
    if widened <= 0 or widened >= len(values):
        return float("nan")
    return float(values[:-widened].mean() - values[-widened:].mean())


def _cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[N, M]`` cosine similarities of the rows of ``a [N, P]`` and ``b [M, P]``."""
    return torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T


def _episode(env, model, seed: int, picks: set):
    """Play one episode with the policy mean; returns (states [(physics, obs)], values, rewards, every obs)."""
    obs, _ = env.reset(seed=seed)
    states, values, rewards, seen = [], [], [], []
    for t in range(env.spec.max_episode_steps):
        action, value = _policy_mean(model, obs)
        values.append(value)
        seen.append(obs.copy())
        if t in picks:
            states.append((env.physics_state(), obs.copy()))
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    return states, np.array(values), np.array(rewards), np.stack(seen)


@torch.no_grad()
def _policy_shape(model, obs: np.ndarray) -> Dict[str, float]:
    """The policy along the episode ``obs [T, O]``: mean |mu| (pre-tanh), mean sigma, and the expected fraction
    of action dimensions that a sample puts beyond |a| > 0.99 (bang-bang), in closed form."""
    _, _, head = model.initial_inference(torch.as_tensor(obs, dtype=torch.float32))
    mean, std = (x.double() for x in head_to_mean_std(head))
    bound = math.atanh(SATURATED)
    beyond = torch.special.ndtr((-bound - mean) / std) + 1.0 - torch.special.ndtr((bound - mean) / std)
    return {"policy_mean_abs": float(mean.abs().mean()), "policy_std": float(std.mean()),
            "policy_saturation": float(beyond.mean())}


def _stochastic_rows(env, state, cands, model, horizon: int, discount: float, rollouts: int, rng,
                     mc: np.ndarray, qs: Dict[str, np.ndarray]) -> Dict[str, float]:
    """The ``mc_stoch`` measures of one state (empty without rollouts)."""
    if rollouts < 1:
        return {}
    runs = np.array([[_mc_q(env, state, a, model, horizon, discount, rng) for _ in range(rollouts)] for a in cands])
    stoch = runs.mean(axis=1)
    sem = signal = float("nan")
    if rollouts > 1:
        sem = float(np.sqrt((runs.var(axis=1, ddof=1) / rollouts).mean()))
        signal = float(np.sqrt(max(0.0, stoch.var() - sem ** 2)))
    out = {"mc_stoch_std": float(stoch.std()), "mc_stoch_sem": sem, "mc_stoch_signal": signal,
           "spearman_mc_stoch_mc": _rank_corr(stoch, mc)}
    for name, (q, mask) in qs.items():
        out[f"spearman_{name}_mc_stoch"] = _rank_corr(q[mask], stoch[mask])
    return out


def probe(run_dir: str, checkpoint=None, states: int = 8, horizon: int = 60, seed: int = 123,
          repeats: int = 16, stochastic_rollouts: int = 0) -> Dict:
    """Run the probe (see the module docstring) and return its numbers."""
    run = load_run(run_dir, checkpoint, device="cpu")
    cfg, parts, model = run.cfg, run.parts, run.parts.model
    if parts.spec.action_type != "continuous" or parts.spec.is_pixels:
        raise ValueError(f"bench probe needs a continuous-action run with vector observations; {run_dir!r} "
                         f"has {parts.spec.action_type} actions and {parts.spec.obs_dtype} observations")
    env, spec = make_env(cfg.task, cfg.env, seed=seed, train=False)
    if not hasattr(env, "restore_physics_state"):
        raise ValueError(f"bench probe needs a MuJoCo task it can rewind (dmc/... or a task file); got {cfg.task!r}")
    last = max(1, spec.max_episode_steps - horizon)
    picks = set(np.linspace(min(20, last - 1), last - 1, states).astype(int).tolist())
    visited, values, rewards, episode_obs = _episode(env, model, seed, picks)
    togo = np.zeros(len(rewards) + 1)
    for i in range(len(rewards) - 1, -1, -1):
        togo[i] = rewards[i] + spec.discount * togo[i + 1]
    n = max(2, len(rewards) - horizon)
    rng = np.random.default_rng(seed)
    rows, projections = [], []
    widened = parts.agent.cfg.widened_count()
    for state, obs in visited:
        out = parts.agent.search(model, obs[None], rng, train=True)
        cands, q, seen = out.sampled_actions[0], out.q_values[0], out.visit_counts[0] > 0
        mc = np.array([_mc_q(env, state, a, model, horizon, spec.discount) for a in cands])
        mc_mean = _mc_q(env, state, _policy_mean(model, obs)[0], model, horizon, spec.discount)
        one = _one_step(env, state, obs, cands, model, spec.discount)
        rows.append({"spearman_search_mc": _rank_corr(q[seen], mc[seen]),
                     "spearman_model_mc": _rank_corr(one["q_model"], mc),
                     "spearman_real_next_mc": _rank_corr(one["q_real"], mc),
                     "spearman_critic_mc": (float("nan") if one["q_critic"] is None
                                            else _rank_corr(one["q_critic"], mc)),
                     "latent_error_ratio": one["latent_error_ratio"], "projection_top1": one["projection_top1"],
                     "mc_gain_chosen": float(mc[int(out.action_index[0])] - mc_mean),
                     "mc_gain_best": float(mc.max() - mc_mean), "mc_std": float(mc.std()),
                     "search_q_std": float(q[seen].std()), "model_q_std": float(one["q_model"].std()),
                     "real_next_q_std": float(one["q_real"].std()),
                     "widened_mc_gap": _widened_gap(mc, widened), "widened_search_gap": _widened_gap(q, widened),
                     **_root_targets(parts.agent, model, obs, repeats, rng),
                     **_stochastic_rows(env, state, cands, model, horizon, spec.discount, stochastic_rollouts, rng,
                                        mc, {"search": (q, seen), "model": (one["q_model"], np.ones_like(seen)),
                                             "real_next": (one["q_real"], np.ones_like(seen))})})
        projections.append(one["projection"])
    stacked = torch.stack(projections)
    cos = _cosines(stacked, stacked)
    pairs = torch.triu_indices(len(projections), len(projections), 1)
    means = {k: _nan_mean([r[k] for r in rows]) for k in rows[0]}
    return {"run_dir": run_dir, "checkpoint": run.checkpoint, "env_steps": run.env_steps, "task": cfg.task,
            "horizon": horizon, "states": len(rows), "episode_return": float(rewards.sum()),
            "value_return_corr": float(np.corrcoef(values[:n], togo[:n])[0, 1]),
            "value_mean": float(values[:n].mean()), "return_to_go_mean": float(togo[:n].mean()),
            "projection_cos_states": float(cos[pairs[0], pairs[1]].mean()) if len(projections) > 1 else float("nan"),
            **_policy_shape(model, episode_obs), **means, "per_state": rows}


def main(argv: List[str]) -> int:
    """Print the probe's numbers as a table (or JSON with ``--json``)."""
    args = _parse(argv)
    torch.set_num_threads(1)
    result = probe(args.run_dir, args.checkpoint, args.states, args.horizon, args.seed, args.repeats,
                   args.stochastic_rollouts)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for key, value in result.items():
        if key != "per_state":
            print(f"{key:24s} {value:.3f}" if isinstance(value, float) else f"{key:24s} {value}")
    return 0
