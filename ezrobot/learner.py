"""One EfficientZero update: unroll K steps, masked and importance-weighted losses, optimizer step.

Implementation details (numbers refer to docs/IMPLEMENTATION.md):
1. Loss = λ_r·L_valueprefix + λ_v·L_value + λ_p·L_policy + λ_c·L_consistency summed over the root and K
   unroll steps, each term masked past the trajectory end (value and reward are trained towards 0 past a
   termination: absorbing states), weighted per sample by the prioritized-replay
   importance weight, averaged over the batch and divided by K (EfficientZero scales the gradient by 1/K).
2. The gradient through each dynamics step is scaled by ``dynamics_grad_scale`` (0.5).
3. The value-prefix LSTM state is reset every ``value_prefix_horizon`` unroll steps, as in the search.
4. Consistency: negative cosine between predictor(projector(dynamics latent at k)) and the stop-gradient
   projection of the representation of the real observation at t+k (both views augmented for pixels);
   with ``train.consistency_space=latent``, the mean squared error between the two latents (TD-MPC2).
5. New priorities: |v̂_0 − z_0| + ε from the root value prediction.
6. With ``train.entropy_target`` the continuous policy's entropy coefficient is learnt (SAC's automatic
   temperature): after each update log(coeff) += ``optim.lr`` · (target − root entropy per action dimension).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import numpy as np
import torch

from ezrobot import losses
from ezrobot.adapt.parts import frozen_parameters, parameter_groups
from ezrobot.config import Config, linear_over_updates
from ezrobot.distributions import SquashedGaussian, head_to_mean_std
from ezrobot.nets import scale_gradient
from ezrobot.precision import bf16_autocast
from ezrobot.types import TrainBatch


class NumericError(ValueError):
    """NaN or inf in a target, a loss term or a gradient; raised before the optimizer step, so the weights
    (and every checkpoint written so far) stay as they were. The message is one line naming the term."""


TARGETS = ("value", "value_prefix", "policy", "weights")
"""TrainBatch fields checked for non-finite values before each update."""


def check_targets(batch: TrainBatch, step: int) -> None:
    """Raise NumericError naming the first target of ``batch`` holding NaN or inf."""
    for name in TARGETS:
        values = getattr(batch, name)
        if not bool(torch.isfinite(values).all()):
            raise NumericError(f"non-finite {name} target at update {step} "
                               f"({int((~torch.isfinite(values)).sum())} of {values.numel()} entries); "
                               "check the task's rewards (reward scales, observation values)")


def check_gradients(model: torch.nn.Module, grad_norm: torch.Tensor, step: int) -> None:
    """Raise NumericError naming the first parameter whose gradient holds NaN or inf."""
    if bool(torch.isfinite(grad_norm)):
        return
    bad = next((name for name, p in model.named_parameters()
                if p.grad is not None and not bool(torch.isfinite(p.grad).all())), "?")
    raise NumericError(f"non-finite gradient of {bad} at update {step} (norm {float(grad_norm)}); "
                       "lower optim.lr or train.grad_clip")


def scaled_negative_q(q: torch.Tensor) -> torch.Tensor:
    """-q / scale for a batch of Q values ``[B]``, scale the 5-95 percentile range of the batch (at least 1,
    no gradient): the policy-gradient losses' normalisation (TD-MPC2)."""
    low, high = torch.quantile(q.detach(), torch.tensor([0.05, 0.95], device=q.device))
    return -q / torch.clamp(high - low, min=1.0)


def make_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """SGD (paper), AdamW or Adam as configured; a run initialised from another (``init_from``) gets one
    parameter group per part with its ``lr_scale`` (``adapt.lr_<part>``)."""
    o = cfg.optim
    params = parameter_groups(model, cfg.adapt.lr_scales()) if cfg.init_from else model.parameters()
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)


def lr_at(step: int, cfg: Config) -> float:
    """Linear warm-up then step decay (×``lr_decay_rate`` at each of ``lr_decay_steps``)."""
    o = cfg.optim
    lr = o.lr * min(1.0, (step + 1) / o.warmup_steps) if o.warmup_steps > 0 else o.lr
    return lr * o.lr_decay_rate ** sum(step >= s for s in o.lr_decay_steps)


ENTROPY_LOG_COEFF_BOUNDS = (math.log(1e-6), math.log(1e2))
"""Range of log(entropy coefficient) under ``train.entropy_target`` (keeps the learnt coefficient finite)."""


class Learner:
    """Owns the optimizer and performs updates on the online model.

    Args:
        model: The online ``EfficientZeroNet``.
        cfg: Run configuration.
        action_type: ``"discrete"`` or ``"continuous"``.
        device: Learner device.
        target_model: The target network; needed when ``train.consistency_target`` is ``target`` or
            ``train.model_gradient_coeff`` > 0.
        discount: Per agent step (the model-gradient loss's Q).
    """

    def __init__(self, model: torch.nn.Module, cfg: Config, action_type: str, device: torch.device,
                 target_model: torch.nn.Module = None, discount: float = 1.0, total_updates: int = 1):
        if cfg.train.consistency_target == "target" and target_model is None:
            raise ValueError("train.consistency_target='target' needs the target network (target_model=None)")
        if cfg.train.critic_target == "td" and cfg.model.critic_heads > 0 and target_model is None:
            raise ValueError("train.critic_target='td' needs the target network (target_model=None)")
        if cfg.train.model_gradient_coeff > 0 and target_model is None:
            raise ValueError("train.model_gradient_coeff > 0 needs the target network (target_model=None)")
        self.discount = discount
        self.model = model
        self.target_model = target_model
        self.cfg = cfg
        self.continuous = action_type == "continuous"
        self.device = device
        self.optimizer = make_optimizer(model, cfg)
        self.frozen = frozen_parameters(model, cfg.adapt.freeze) if cfg.init_from else []
        self.horizon = cfg.search.value_prefix_horizon if model.use_value_prefix else 1
        self.total_updates = int(total_updates)
        self.entropy_log_coeff = (math.log(cfg.train.entropy_coeff)
                                  if cfg.train.entropy_target and self.continuous else None)
        self.augment = None
        if cfg.train.augment:
            from ezrobot.nets.augment import augment_observations
            self.augment = augment_observations


    def entropy_coeff(self) -> float:
        """The entropy bonus's coefficient now: ``train.entropy_coeff``, or the learnt one under
        ``train.entropy_target``."""
        return self.cfg.train.entropy_coeff if self.entropy_log_coeff is None else math.exp(self.entropy_log_coeff)

    def entropy_target_at(self, step: int) -> float:
        """``train.entropy_target``'s per-dimension target at update ``step`` (linear over the run's updates)."""
        start, end = self.cfg.train.entropy_target
        return linear_over_updates(start, end, step, self.total_updates)

    def _adapt_entropy_coeff(self, entropy_per_dim: float, step: int) -> None:
        """Move log(coeff) by ``optim.lr`` × (target − the batch's root entropy per action dimension)."""
        lo, hi = ENTROPY_LOG_COEFF_BOUNDS
        moved = self.entropy_log_coeff + self.cfg.optim.lr * (self.entropy_target_at(step) - entropy_per_dim)
        self.entropy_log_coeff = min(hi, max(lo, moved))

    def state_dict(self) -> Dict[str, Any]:
        """The learner's own state besides the optimizer (the learnt entropy coefficient), for checkpoints."""
        return {"entropy_log_coeff": self.entropy_log_coeff}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (checkpoints written before it existed carry none: nothing changes)."""
        if state.get("entropy_log_coeff") is not None and self.entropy_log_coeff is not None:
            self.entropy_log_coeff = float(state["entropy_log_coeff"])

    def _policy_loss(self, policy: torch.Tensor, batch: TrainBatch, k: int) -> torch.Tensor:
        """Per-sample policy loss [B] at step k (masked by the caller)."""
        if not self.continuous:
            return losses.cross_entropy(policy, batch.policy[:, k])
        dist = SquashedGaussian.from_head(policy)
        mode = self.cfg.train.policy_loss
        if mode == "auto":
            mode = "ce" if batch.sampled_actions.shape[-1] == 1 else "best"
        clip = self.cfg.train.policy_action_clip
        if mode in ("ce", "importance"):  # the targets differ, not the loss (ezrobot/lookahead.py)
            loss = losses.sampled_policy_cross_entropy(dist, batch.sampled_actions[:, k], batch.policy[:, k], clip)
        elif mode == "split":
            loss = losses.split_policy_loss(dist, batch.best_action[:, k], batch.sampled_actions[:, k],
                                            batch.policy[:, k], clip)
        else:
            loss = losses.best_action_nll(dist, batch.best_action[:, k], clip)
        coeff = self.entropy_coeff()
        if coeff > 0:
            loss = loss - coeff * dist.entropy(clip=clip)
        return loss

    def _model_gradient_loss(self, policy: torch.Tensor, obs0: torch.Tensor) -> torch.Tensor:
        """``train.model_gradient_coeff``'s per-sample loss ``[B]``: -Q(s, a) / scale with a reparameterised
        from the root policy head ``policy [B, 2D]`` and Q by the target network on ``obs0 [B, *O]``."""
        net = self.target_model
        with torch.no_grad():
            latent, _, _ = net.initial_inference(obs0)
        action = SquashedGaussian.from_head(policy).rsample()
        _, reward_logits, _, value_logits, _ = net.recurrent_inference(
            latent, action, net.initial_lstm_state(obs0.shape[0], obs0.device))
        q = (net.reward_support.logits_to_scalar(reward_logits.float())
             + self.discount * net.value_support.logits_to_scalar(value_logits.float()))
        return scaled_negative_q(q)

    def _critic_loss(self, latent: torch.Tensor, batch: TrainBatch) -> torch.Tensor:
        """``model.critic_heads``' per-sample loss ``[B]``: the cross-entropy of every Q head at the root
        ``latent`` and the replay's first action against ``train.critic_target`` (the row's value target,
        masked like the root value; or the one-step TD target, masked where no action was taken), summed
        over heads."""
        logits = self.model.critic_q(latent, batch.actions[:, 0], logits=True)
        if self.cfg.train.critic_target == "td":
            value, mask = self._critic_td_target(batch), batch.action_mask[:, 0]
        else:
            value, mask = batch.value[:, 0], batch.value_mask[:, 0]
        target = self.model.value_support.scalar_to_probs(value)
        return sum(losses.cross_entropy(head, target) for head in logits) * mask

    @torch.no_grad()
    def _critic_td_target(self, batch: TrainBatch) -> torch.Tensor:
        """``[B]`` one-step targets r_t + γ · continues · min_i Q̄_i(s_{t+1}, a'), a' drawn from the target
        network's policy at the encoded real next observation (SAC, TD-MPC2)."""
        net = self.target_model
        latent, _, policy = net.initial_inference(batch.obs[:, 1])
        action = SquashedGaussian.from_head(policy.float()).sample()
        q = net.value_support.logits_to_scalar(net.critic_q(latent, action, logits=True).float()).min(dim=0).values
        continues = batch.next_continues if batch.next_continues is not None else torch.ones_like(q)
        return batch.value_prefix[:, 0].float() + self.discount * continues * q

    def _actor_loss(self, latent: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``train.actor_coeff``'s per-sample loss ``[B]`` and the critic's Q ``[B]`` of the sampled actions:
        -min_i Q_i(s, a) / scale - actor_entropy_coeff * entropy, with a reparameterised from the policy head on the
        stop-gradient root ``latent`` and the critic's weights held fixed."""
        model = self.model
        _, policy = model.prediction(latent.detach())
        dist = SquashedGaussian.from_head(policy.float())
        params = {name: p.detach() for name, p in model.critic.named_parameters()}
        logits = torch.func.functional_call(model.critic, params, (latent.detach(), dist.rsample()))
        q = model.value_support.logits_to_scalar(logits).min(dim=0).values
        loss = scaled_negative_q(q)
        if self.cfg.train.actor_entropy_coeff > 0:
            loss = loss - self.cfg.train.actor_entropy_coeff * dist.entropy()
        return loss, q.detach()

    def _consistency_targets(self, obs: torch.Tensor) -> torch.Tensor:
        """Stop-gradient encodings of the real observations at t+1..t+K (by the online or the target
        network, see ``train.consistency_target``): projections ``[B, K, P]``, or latents ``[B, K, *L]``
        with ``train.consistency_space=latent``."""
        b, k1 = obs.shape[:2]
        net = self.target_model if self.cfg.train.consistency_target == "target" else self.model
        with torch.no_grad():
            latent, _, _ = net.initial_inference(obs[:, 1:].reshape(b * (k1 - 1), *obs.shape[2:]))
            if self.cfg.train.consistency_space == "latent":
                return latent.reshape(b, k1 - 1, *latent.shape[1:]).detach()
            proj = net.project(latent, with_predictor=False)
        return proj.reshape(b, k1 - 1, -1).detach()

    def _consistency_loss(self, latent: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B]`` consistency of the dynamics' ``latent`` with one step's target (``train.consistency_space``)."""
        if self.cfg.train.consistency_space == "latent":
            return losses.latent_consistency(latent, target)
        return losses.consistency(self.model.project(latent, with_predictor=True), target)

    def compute_loss(self, batch: TrainBatch, step: int = None) -> Tuple[torch.Tensor, Dict[str, float], torch.Tensor]:
        """Loss of one batch at update index ``step`` (None: past every schedule).

        Returns:
            ``(loss, metrics, root_value_pred [B])``.
        """
        model, t = self.model, self.cfg.train
        K = batch.actions.shape[1]
        use_consistency = t.consistency_loss_coeff > 0 and (step is None or step >= t.consistency_start)
        obs = batch.obs if use_consistency else batch.obs[:, :1]  # the t+1..t+K views feed only consistency
        if self.augment is not None and obs.dtype == torch.uint8:
            obs = self.augment(obs)
        targets_c = self._consistency_targets(obs) if use_consistency else None
        latent, value_logits, policy = model.initial_inference(obs[:, 0])
        root_policy, root_policy_grad, root_latent = policy.detach(), policy, latent
        entry_std = latent.reshape(latent.shape[0], -1).std(0)
        latent_std = entry_std.detach().mean().item()
        v_loss = losses.cross_entropy(value_logits, model.value_support.scalar_to_probs(batch.value[:, 0]))
        v_loss = v_loss * batch.value_mask[:, 0]
        p_loss = self._policy_loss(policy, batch, 0) * batch.policy_mask[:, 0]
        r_loss = torch.zeros_like(v_loss)
        c_loss = torch.zeros_like(v_loss)
        root_value = model.value_support.logits_to_scalar(value_logits.detach().float())
        lstm = model.initial_lstm_state(obs.shape[0], obs.device)
        for k in range(1, K + 1):
            latent, vp_logits, lstm, value_logits, policy = model.recurrent_inference(
                latent, batch.actions[:, k - 1], lstm)
            latent = scale_gradient(latent, t.dynamics_grad_scale)
            step_mask = batch.action_mask[:, k - 1]
            r_target = model.reward_support.scalar_to_probs(batch.value_prefix[:, k - 1])
            r_loss = r_loss + losses.cross_entropy(vp_logits, r_target) * batch.reward_mask[:, k - 1]
            v_target = model.value_support.scalar_to_probs(batch.value[:, k])
            v_loss = v_loss + losses.cross_entropy(value_logits, v_target) * batch.value_mask[:, k]
            p_loss = p_loss + self._policy_loss(policy, batch, k) * batch.policy_mask[:, k]
            if use_consistency:
                c_loss = c_loss + self._consistency_loss(latent, targets_c[:, k - 1]) * step_mask
            if lstm is not None and k % self.horizon == 0:
                lstm = model.initial_lstm_state(obs.shape[0], obs.device)
        per_sample = (t.value_prefix_loss_coeff * r_loss + t.value_loss_coeff * v_loss
                      + t.policy_loss_coeff * p_loss + t.consistency_loss_coeff * c_loss)
        loss = (per_sample * batch.weights).mean() / K
        mg_loss = torch.zeros_like(v_loss)
        if t.model_gradient_coeff > 0 and self.continuous:
            mg_loss = self._model_gradient_loss(root_policy_grad, obs[:, 0])
            loss = loss + t.model_gradient_coeff * (mg_loss * batch.weights).mean()
        critic_loss, actor_loss, critic_q = (torch.zeros_like(v_loss) for _ in range(3))
        if model.critic is not None:
            critic_loss = self._critic_loss(root_latent, batch)
            loss = loss + t.value_loss_coeff * (critic_loss * batch.weights).mean()
            if t.actor_coeff > 0:
                actor_loss, critic_q = self._actor_loss(root_latent)
                loss = loss + t.actor_coeff * (actor_loss * batch.weights).mean()
        var_loss = entry_std.new_zeros(())
        if t.variance_loss_coeff > 0:
            var_loss = torch.relu(t.variance_floor - entry_std).mean()
            loss = loss + t.variance_loss_coeff * var_loss
        metrics = {
            "loss/total": loss.item(), "loss/value_prefix": r_loss.mean().item(),
            "loss/value": v_loss.mean().item(), "loss/policy": p_loss.mean().item(),
            "loss/consistency": c_loss.mean().item(), "train/latent_std": latent_std,
            "loss/variance": var_loss.item(), "loss/model_gradient": mg_loss.mean().item(),
        }
        if model.critic is not None:
            metrics.update({"loss/critic": critic_loss.mean().item(), "loss/actor": actor_loss.mean().item(),
                            "train/critic_q": critic_q.mean().item()})
        if self.continuous:
            _, std = head_to_mean_std(root_policy)
            metrics["train/policy_std"] = std.mean().item()
            if self.entropy_log_coeff is not None:  # only then: the estimate draws from torch's generator
                entropy = SquashedGaussian.from_head(root_policy.detach().float()).entropy()
                metrics["train/policy_entropy"] = (entropy.mean() / std.shape[-1]).item()
        return loss, metrics, root_value

    def update(self, batch: TrainBatch, step: int) -> Tuple[Dict[str, float], np.ndarray]:
        """One gradient step at update index ``step``.

        Returns:
            ``(metrics, new_priorities [B])``.
        """
        lr = lr_at(step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.model.train()
        check_targets(batch, step)
        with bf16_autocast(self.device, self.cfg.train.bf16):
            loss, metrics, root_value = self.compute_loss(batch, step)
        bad = [k for k, v in metrics.items() if k.startswith("loss/") and k != "loss/total" and not np.isfinite(v)]
        if bad or not np.isfinite(metrics["loss/total"]):
            raise NumericError(f"non-finite {(bad or ['loss/total'])[0]} ({metrics[(bad or ['loss/total'])[0]]}) at "
                               f"update {step}; lower optim.lr or check the task's rewards")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.frozen and (self.cfg.adapt.freeze_updates == 0 or step < self.cfg.adapt.freeze_updates):
            for p in self.frozen:  # no gradient: no optimizer step, no weight decay, no clipping share
                p.grad = None
        params = [p for p in self.model.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])  # clip_grad_norm_ in two halves:
        check_gradients(self.model, grad_norm, step)  # the check sees the gradients before any scaling
        torch.nn.utils.clip_grads_with_norm_(params, self.cfg.train.grad_clip, grad_norm)
        self.optimizer.step()
        metrics["train/lr"] = lr
        metrics["train/grad_norm"] = float(grad_norm)
        if self.entropy_log_coeff is not None:
            self._adapt_entropy_coeff(metrics["train/policy_entropy"], step)
            metrics["train/entropy_coeff"] = self.entropy_coeff()
        priorities = (root_value - batch.value[:, 0].float()).abs() + self.cfg.replay.priority_eps
        return metrics, priorities.cpu().numpy()
