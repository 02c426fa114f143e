"""The learner (ezrobot.learner): masks, importance weights, 1/K scaling, loss weights, gradient clipping and
the dynamics gradient scale, on small MLP models with randomised weights."""
import dataclasses
import math

import pytest
import torch

from ezrobot.config import Config
from ezrobot.distributions import SquashedGaussian
from ezrobot.envs.spec import EnvSpec
from ezrobot.learner import ENTROPY_LOG_COEFF_BOUNDS, Learner, lr_at
from ezrobot.nets import build_model
from ezrobot.nets.config import ModelConfig
from ezrobot.types import TrainBatch

DISCRETE = EnvSpec("test/vector-discrete", (4,), "float32", 1, "discrete", 3, 0.97, 1, 100)
CONTINUOUS = EnvSpec("test/vector-continuous", (4,), "float32", 1, "continuous", 2, 0.97, 1, 100)
NUM_SAMPLED = 4


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models: two OpenMP threads on a busy 2-core machine were measured 50x slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _config(policy_loss="auto", **train) -> Config:
    cfg = Config()
    # LayerNorm projector: the per-sample masking tests need samples that do not share batch statistics
    # (a BatchNorm projector couples every sample's consistency loss to the others).
    cfg.model = ModelConfig(preset="small", use_value_prefix=True, latent_dim=16, mlp_hidden=32,
                            head_hidden=[16], lstm_hidden=16, projection_dim=16, predictor_hidden=8,
                            action_embedding=8, projection_norm="layer")
    cfg.train = dataclasses.replace(cfg.train, augment=False, policy_loss=policy_loss, **train)
    cfg.optim = dataclasses.replace(cfg.optim, optimizer="sgd", lr=1.0, momentum=0.0, weight_decay=0.0,
                                    warmup_steps=0, lr_decay_steps=[])
    return cfg


def _learner(spec=DISCRETE, seed=0, **kw) -> Learner:
    cfg = _config(**kw)
    torch.manual_seed(seed)
    model = build_model(cfg.model, spec)
    with torch.no_grad():  # zero-initialised output layers would block every gradient below them
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return Learner(model, cfg, spec.action_type, torch.device("cpu"))


def _batch(spec=DISCRETE, B=4, K=3, seed=1) -> TrainBatch:
    g = torch.Generator().manual_seed(seed)
    continuous = spec.action_type == "continuous"
    P = NUM_SAMPLED if continuous else spec.num_actions
    D = spec.num_actions
    if continuous:
        actions = torch.rand(B, K, D, generator=g) * 2 - 1
        sampled = torch.rand(B, K + 1, P, D, generator=g) * 1.8 - 0.9
    else:
        actions = torch.randint(0, D, (B, K), generator=g)
        sampled = None
    return TrainBatch(
        obs=torch.randn(B, K + 1, *spec.obs_shape, generator=g), actions=actions, weights=torch.ones(B),
        value_prefix=torch.randn(B, K, generator=g) * 2, value=torch.randn(B, K + 1, generator=g) * 3,
        policy=torch.softmax(torch.randn(B, K + 1, P, generator=g), -1),
        obs_mask=torch.ones(B, K + 1), policy_mask=torch.ones(B, K + 1), action_mask=torch.ones(B, K),
        value_mask=torch.ones(B, K + 1), reward_mask=torch.ones(B, K),
        sampled_actions=sampled, best_action=None if sampled is None else sampled[:, :, 1].clone())


def _select(batch: TrainBatch, rows) -> TrainBatch:
    return TrainBatch(**{f.name: None if getattr(batch, f.name) is None else getattr(batch, f.name)[rows]
                         for f in dataclasses.fields(batch)})


def _grads(learner: Learner, batch: TrainBatch):
    learner.model.zero_grad(set_to_none=False)
    torch.manual_seed(123)  # the continuous entropy bonus is a Monte-Carlo estimate
    loss, metrics, _ = learner.compute_loss(batch)
    loss.backward()
    return loss.detach(), {n: p.grad.detach().clone() for n, p in learner.model.named_parameters()
                           if p.grad is not None}


def _mask_out(batch: TrainBatch, row: int) -> None:
    for name in ("obs_mask", "policy_mask", "action_mask", "value_mask", "reward_mask"):
        getattr(batch, name)[row] = 0.0


KINDS = [(DISCRETE, "auto", 0.0), (CONTINUOUS, "ce", 0.0), (CONTINUOUS, "best", 0.01)]


@pytest.mark.parametrize("spec, policy_loss, entropy", KINDS)
def test_fully_masked_sample_contributes_no_gradient(spec, policy_loss, entropy):
    learner = _learner(spec, policy_loss=policy_loss, entropy_coeff=entropy)
    batch = _batch(spec)
    _mask_out(batch, 3)
    loss_a, grads_a = _grads(learner, batch)
    other = _batch(spec, seed=7)  # change everything about the masked sample
    for f in dataclasses.fields(batch):
        if getattr(batch, f.name) is not None and "mask" not in f.name and f.name != "weights":
            getattr(batch, f.name)[3] = getattr(other, f.name)[3]
    loss_b, grads_b = _grads(learner, batch)
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=1e-6), name
    if entropy > 0:
        return  # the entropy estimate's random draws depend on the batch size
    # The masked sample only enlarges the batch mean's denominator: 4/4 * loss == 3/3 * loss(others).
    loss_c, grads_c = _grads(learner, _select(batch, slice(0, 3)))
    assert torch.allclose(loss_a * 4, loss_c * 3, rtol=1e-5)
    for name in grads_c:
        assert torch.allclose(grads_a[name] * 4, grads_c[name] * 3, rtol=1e-4, atol=1e-5), name  # float32 sums


def test_only_masked_samples_give_zero_loss_and_gradient():
    learner = _learner()
    batch = _batch(B=2)
    _mask_out(batch, 0)
    _mask_out(batch, 1)
    loss, grads = _grads(learner, batch)
    assert loss.item() == 0.0
    assert all(float(g.abs().max()) == 0.0 for g in grads.values())


def test_importance_weights_scale_the_loss_linearly():
    learner = _learner()
    batch = _batch()
    per_sample = []
    for i in range(4):
        batch.weights = torch.zeros(4)
        batch.weights[i] = 1.0
        per_sample.append(learner.compute_loss(batch)[0].item())
    w = torch.tensor([0.5, 2.0, 0.0, 1.25])
    batch.weights = w
    loss, _, _ = learner.compute_loss(batch)
    assert loss.item() == pytest.approx(sum(wi * li for wi, li in zip(w.tolist(), per_sample)), rel=1e-5)
    batch.weights = torch.ones(4)
    _, g1 = _grads(learner, batch)
    batch.weights = torch.full((4,), 3.0)
    _, g3 = _grads(learner, batch)
    for name in g1:
        assert torch.allclose(g3[name], 3 * g1[name], rtol=1e-4, atol=1e-6), name  # float32 sums


def _soft_ce(logits, probs):
    return -(probs * torch.log_softmax(logits, -1)).sum(-1)


@torch.no_grad()
def _reference_loss(learner: Learner, batch: TrainBatch) -> float:
    """Independent re-computation of the EfficientZero loss (discrete, no consistency, K < LSTM horizon)."""
    model, t = learner.model, learner.cfg.train
    B, K = batch.actions.shape
    latent, v_logits, pol = model.initial_inference(batch.obs[:, 0])
    total = t.value_loss_coeff * _soft_ce(v_logits, model.value_support.scalar_to_probs(batch.value[:, 0]))
    total = total * batch.value_mask[:, 0] + t.policy_loss_coeff * _soft_ce(pol, batch.policy[:, 0]) \
        * batch.policy_mask[:, 0]
    lstm = model.initial_lstm_state(B, "cpu")
    for k in range(1, K + 1):
        latent, r_logits, lstm, v_logits, pol = model.recurrent_inference(latent, batch.actions[:, k - 1], lstm)
        r = _soft_ce(r_logits, model.reward_support.scalar_to_probs(batch.value_prefix[:, k - 1]))
        v = _soft_ce(v_logits, model.value_support.scalar_to_probs(batch.value[:, k]))
        p = _soft_ce(pol, batch.policy[:, k])
        total = total + (t.value_prefix_loss_coeff * r * batch.reward_mask[:, k - 1]
                         + t.value_loss_coeff * v * batch.value_mask[:, k] + t.policy_loss_coeff * p
                         * batch.policy_mask[:, k])
    return float((total * batch.weights).mean() / K)


@pytest.mark.parametrize("K", [1, 3])
def test_loss_matches_a_hand_computation_with_1_over_K(K):
    learner = _learner(consistency_loss_coeff=0.0, value_loss_coeff=0.25, value_prefix_loss_coeff=1.0)
    batch = _batch(K=K)
    batch.weights = torch.tensor([1.0, 0.5, 2.0, 0.25])
    batch.value_mask[1, -1] = 0.0
    batch.policy_mask[2, 0] = 0.0
    batch.reward_mask[0, -1] = 0.0
    loss, metrics, _ = learner.compute_loss(batch)
    assert loss.item() == pytest.approx(_reference_loss(learner, batch), rel=1e-5)
    batch.weights = torch.ones(4)
    loss, m, _ = learner.compute_loss(batch)
    t = learner.cfg.train
    weighted = (t.value_prefix_loss_coeff * m["loss/value_prefix"] + t.value_loss_coeff * m["loss/value"]
                + t.policy_loss_coeff * m["loss/policy"] + t.consistency_loss_coeff * m["loss/consistency"])
    assert m["loss/total"] * K == pytest.approx(weighted, rel=1e-5)


def test_consistency_term_is_weighted_and_masked_by_action_mask():
    learner = _learner(consistency_loss_coeff=2.0)
    batch = _batch()
    _, m_on, _ = learner.compute_loss(batch)
    assert 0 < abs(m_on["loss/consistency"]) <= 3  # negative cosine similarity summed over K = 3 steps
    batch.action_mask[:] = 0.0
    _, m_off, _ = learner.compute_loss(batch)
    assert m_off["loss/consistency"] == 0.0


def test_consistency_start_switches_the_term_on_at_that_update():
    learner = _learner(consistency_loss_coeff=2.0, consistency_start=10)
    batch = _batch()
    assert learner.compute_loss(batch, step=9)[1]["loss/consistency"] == 0.0
    _, grads = _grads(learner, batch)  # step None: past every schedule, the term is on
    assert 0 < abs(learner.compute_loss(batch, step=10)[1]["loss/consistency"]) <= 3
    metrics, _ = learner.update(batch, 3)
    assert metrics["loss/consistency"] == 0.0
    assert "simsiam.predictor.0.weight" in grads


def test_views_past_the_root_are_unused_while_consistency_is_off():
    """Before ``consistency_start`` the t+1..t+K observations feed no term (and are not augmented): changing
    them leaves the loss bit-identical; once the term is on they change it."""
    learner = _learner(consistency_loss_coeff=2.0, consistency_start=10)
    batch = _batch()
    other = dataclasses.replace(batch, obs=batch.obs.clone())
    other.obs[:, 1:] += 1.0
    assert learner.compute_loss(batch, step=9)[0].item() == learner.compute_loss(other, step=9)[0].item()
    assert learner.compute_loss(batch, step=10)[0].item() != learner.compute_loss(other, step=10)[0].item()


def test_consistency_target_network_supplies_the_targets():
    """``target``: the stop-gradient targets are the target network's projections; ``online``: its own."""
    online = _learner(consistency_loss_coeff=2.0)
    target_net = build_model(online.cfg.model, DISCRETE)
    with torch.no_grad():
        for p in target_net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    cfg = dataclasses.replace(online.cfg, train=dataclasses.replace(online.cfg.train, consistency_target="target"))
    by_target = Learner(online.model, cfg, "discrete", torch.device("cpu"), target_model=target_net)
    batch = _batch()
    c_online = online.compute_loss(batch)[1]["loss/consistency"]
    c_target = by_target.compute_loss(batch)[1]["loss/consistency"]
    assert c_online != pytest.approx(c_target)
    same = Learner(online.model, cfg, "discrete", torch.device("cpu"), target_model=online.model)
    assert same.compute_loss(batch)[1]["loss/consistency"] == pytest.approx(c_online)
    with pytest.raises(ValueError, match="consistency_target='target' needs the target network"):
        Learner(online.model, cfg, "discrete", torch.device("cpu"))


def test_variance_floor_penalises_collapsed_latents_only():
    learner = _learner(variance_loss_coeff=10.0, variance_floor=0.1)
    batch = _batch()
    batch.obs[:] = batch.obs[:1].clone()  # every sample the same observation: zero spread over the batch
    loss_on, m_on, _ = learner.compute_loss(batch)
    assert m_on["loss/variance"] == pytest.approx(0.1, abs=1e-6) and m_on["train/latent_std"] < 1e-6
    off = _learner(variance_loss_coeff=0.0)
    loss_off, m_off, _ = off.compute_loss(batch)
    assert m_off["loss/variance"] == 0.0
    assert loss_on.item() == pytest.approx(loss_off.item() + 10.0 * 0.1, rel=1e-5)
    spread = _learner(variance_loss_coeff=10.0, variance_floor=1e-4)
    assert spread.compute_loss(_batch())[1]["loss/variance"] == 0.0  # distinct observations: above the floor


def _flat(model):
    return torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])


@pytest.mark.parametrize("clip", [1e-3, 1e6])
def test_update_clips_the_global_gradient_norm(clip):
    learner = _learner(grad_clip=clip)
    batch = _batch()
    _, grads = _grads(learner, batch)
    raw = torch.cat([grads[n].reshape(-1) if n in grads else torch.zeros(p.numel())
                     for n, p in learner.model.named_parameters()])
    raw_norm = raw.norm().item()
    before = _flat(learner.model)
    metrics, priorities = learner.update(batch, step=0)
    step = _flat(learner.model) - before
    assert metrics["train/grad_norm"] == pytest.approx(raw_norm, rel=1e-4)
    assert metrics["train/lr"] == 1.0
    expected = -raw * min(1.0, clip / raw_norm)
    assert torch.allclose(step, expected, rtol=1e-3, atol=1e-7)
    if clip < raw_norm:
        assert step.norm().item() == pytest.approx(clip, rel=1e-3)
    assert priorities.shape == (4,) and (priorities > 0).all()


def test_priorities_are_root_value_errors():
    learner = _learner()
    batch = _batch()
    with torch.no_grad():
        _, logits, _ = learner.model.initial_inference(batch.obs[:, 0])
        v = learner.model.value_support.logits_to_scalar(logits)
    _, priorities = learner.update(batch, step=0)
    expected = (v - batch.value[:, 0]).abs() + learner.cfg.replay.priority_eps
    assert torch.allclose(torch.as_tensor(priorities), expected, rtol=1e-4, atol=1e-5)


def _value_only_at(batch: TrainBatch, k: int) -> None:
    for name in ("policy_mask", "action_mask", "value_mask", "reward_mask"):
        getattr(batch, name).zero_()
    batch.value_mask[:, k] = 1.0


def _grads_with_scale(learner, batch, scale):
    learner.cfg.train.dynamics_grad_scale = scale
    return _grads(learner, batch)[1]


def test_dynamics_gradient_scale_multiplies_gradients_from_deeper_steps():
    learner = _learner(consistency_loss_coeff=0.0)
    batch = _batch(K=2)
    _value_only_at(batch, 2)  # loss at unroll step 2: its gradient crosses one scaled latent
    full = _grads_with_scale(learner, batch, 1.0)
    half = _grads_with_scale(learner, batch, 0.5)
    rep = [n for n in full if n.startswith("representation.")]
    pred = [n for n in full if n.startswith("prediction.")]
    assert rep and pred
    assert any(float(full[n].abs().max()) > 1e-6 for n in rep)
    for n in rep:
        assert torch.allclose(half[n], 0.5 * full[n], rtol=1e-4, atol=1e-8), n
    for n in pred:
        assert torch.allclose(half[n], full[n], rtol=1e-4, atol=1e-8), n


def test_dynamics_gradient_scale_is_applied_after_each_step_not_before_the_first():
    """As in MuZero's pseudocode and EfficientZero's code: the root latent is not scaled, so a loss at
    unroll step 1 sends its full gradient into the representation."""
    learner = _learner(consistency_loss_coeff=0.0)
    batch = _batch(K=1)
    _value_only_at(batch, 1)
    full = _grads_with_scale(learner, batch, 1.0)
    half = _grads_with_scale(learner, batch, 0.5)
    for n in full:
        assert torch.allclose(half[n], full[n], rtol=1e-5, atol=1e-8), n


def test_lr_schedule_warmup_and_decay():
    cfg = _config()
    cfg.optim = dataclasses.replace(cfg.optim, lr=0.2, warmup_steps=1000, lr_decay_steps=[100_000],
                                    lr_decay_rate=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.2 / 1000)
    assert lr_at(499, cfg) == pytest.approx(0.1)
    assert lr_at(999, cfg) == pytest.approx(0.2)
    assert lr_at(99_999, cfg) == pytest.approx(0.2)
    assert lr_at(100_000, cfg) == pytest.approx(0.02)


def _model_gradient_learner(coeff):
    online = _learner(CONTINUOUS, consistency_loss_coeff=0.0)
    cfg = dataclasses.replace(online.cfg, train=dataclasses.replace(online.cfg.train, model_gradient_coeff=coeff))
    target_net = build_model(cfg.model, CONTINUOUS)
    target_net.load_state_dict(online.model.state_dict())
    for p in target_net.parameters():
        p.requires_grad_(False)
    return Learner(online.model, cfg, "continuous", torch.device("cpu"), target_model=target_net.eval(),
                   discount=0.9), target_net


def test_model_gradient_loss_is_minus_q_over_its_range_and_trains_only_the_policy():
    """-Q(s, a)/scale with Q = r + 0.9 V of the target network at a = tanh(mu + sigma eps); its gradient
    reaches the online prediction trunk and policy head through a, never the target network's weights, nor
    the online representation, dynamics or reward head (which it does not call)."""
    learner, target_net = _model_gradient_learner(1.0)
    batch = _batch(CONTINUOUS, B=16)
    obs0 = batch.obs[:, 0]
    _, _, head = learner.model.initial_inference(obs0)
    torch.manual_seed(7)
    got = learner._model_gradient_loss(head, obs0)
    torch.manual_seed(7)
    action = SquashedGaussian.from_head(head.detach()).rsample()
    latent, _, _ = target_net.initial_inference(obs0)
    lstm = target_net.initial_lstm_state(16, "cpu")
    _, r_logits, _, v_logits, _ = target_net.recurrent_inference(latent, action, lstm)
    q = target_net.reward_support.logits_to_scalar(r_logits) + 0.9 * target_net.value_support.logits_to_scalar(v_logits)
    scale = max(float(torch.quantile(q, 0.95) - torch.quantile(q, 0.05)), 1.0)
    torch.testing.assert_close(got.detach(), -q / scale, rtol=1e-5, atol=1e-6)
    got.sum().backward()
    assert all(p.grad is None for p in target_net.parameters())
    policy_head = learner.model.prediction.heads.policy.parameters()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy_head)
    for name in ("dynamics", "reward_head"):
        assert all(p.grad is None for p in getattr(learner.model, name).parameters()), name


def test_model_gradient_term_enters_the_total_loss_with_its_coefficient():
    batch = _batch(CONTINUOUS)
    torch.manual_seed(3)
    off = _model_gradient_learner(0.0)[0].compute_loss(batch, step=10)
    torch.manual_seed(3)
    on, _ = _model_gradient_learner(2.0)
    torch.manual_seed(3)
    loss, metrics, _ = on.compute_loss(batch, step=10)
    assert off[1]["loss/model_gradient"] == 0.0 and metrics["loss/model_gradient"] != 0.0
    assert loss.item() == pytest.approx(off[0].item() + 2.0 * metrics["loss/model_gradient"], rel=1e-4, abs=1e-5)
    with pytest.raises(ValueError, match="model_gradient_coeff > 0 needs the target network"):
        Learner(on.model, on.cfg, "continuous", torch.device("cpu"))


def test_latent_consistency_is_the_mse_to_the_encoded_next_observation_with_stop_gradient():
    """``consistency_space=latent``: per step, mean over latent entries of (g(s_{k-1}, a) - sg(h(o_k)))^2,
    summed over the unroll steps, with no gradient into the encoding of the targets and none into the
    SimSiam head."""
    learner = _learner(CONTINUOUS, consistency_loss_coeff=2.0, consistency_space="latent")
    batch = _batch(CONTINUOUS)
    model = learner.model
    with torch.no_grad():
        latent, _, _ = model.initial_inference(batch.obs[:, 0])
        expected = torch.zeros(batch.obs.shape[0])
        for k in range(1, batch.actions.shape[1] + 1):
            latent = model.recurrent_inference(latent, batch.actions[:, k - 1], None)[0]
            target, _, _ = model.initial_inference(batch.obs[:, k])
            expected += ((latent - target) ** 2).mean(-1) * batch.action_mask[:, k - 1]
    _, m, _ = learner.compute_loss(batch)
    assert m["loss/consistency"] == pytest.approx(expected.mean().item(), rel=1e-5)
    assert m["loss/consistency"] > 0
    _, grads = _grads(learner, batch)
    assert not any(name.startswith("simsiam.") for name in grads)
    assert "dynamics.out.weight" in grads
    # the targets carry no gradient: d loss / d o_{1..K} is zero, d loss / d o_0 is not
    obs = batch.obs.clone().requires_grad_(True)
    loss, _, _ = learner.compute_loss(dataclasses.replace(batch, obs=obs))
    loss.backward()
    assert obs.grad[:, 1:].abs().max().item() == 0.0
    assert obs.grad[:, 0].abs().max().item() > 0.0


def _critic_learner(actor_coeff, entropy_coeff=0.0, value_loss_coeff=1.0):
    cfg = _config(consistency_loss_coeff=0.0, actor_coeff=actor_coeff, actor_entropy_coeff=entropy_coeff,
                  value_loss_coeff=value_loss_coeff)
    cfg.model = dataclasses.replace(cfg.model, critic_heads=2)
    torch.manual_seed(0)
    model = build_model(cfg.model, CONTINUOUS)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return Learner(model, cfg, "continuous", torch.device("cpu"))


def test_critic_loss_is_the_cross_entropy_of_each_head_at_the_replay_action_against_the_value_target():
    learner = _critic_learner(0.0)
    batch = _batch(CONTINUOUS, B=8)
    batch.value_mask[3, 0] = 0.0
    model = learner.model
    latent, _, _ = model.initial_inference(batch.obs[:, 0])
    x = torch.cat([latent, batch.actions[:, 0]], -1)
    probs = model.value_support.scalar_to_probs(batch.value[:, 0])
    expected = sum(_soft_ce(head(x), probs) for head in model.critic.heads) * batch.value_mask[:, 0]
    got = learner._critic_loss(latent, batch)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert got[3].item() == 0.0 and got.sum().item() > 0
    # it enters the total loss weighted by value_loss_coeff, and trains the critic and the representation
    off = _critic_learner(0.0, value_loss_coeff=0.0)
    _, m_off, _ = off.compute_loss(batch)
    loss, m, _ = learner.compute_loss(batch)
    assert m["loss/critic"] == pytest.approx(got.mean().item(), rel=1e-5)
    value_only = m_off["loss/value"] / batch.actions.shape[1]
    assert loss.item() - m_off["loss/total"] == pytest.approx(value_only + m["loss/critic"], rel=1e-4)
    _, grads = _grads(learner, batch)
    assert any(n.startswith("critic.") for n in grads) and any(n.startswith("representation.") for n in grads)


def test_critic_td_target_is_the_reward_plus_the_discounted_min_target_q_at_a_policy_draw_of_the_next_state():
    """train.critic_target=td: r_t + γ · continues · min_i Q̄_i(s_{t+1}, a'), a' from the target network's
    policy at the real next observation; no bootstrap where the first action terminated the episode."""
    cfg = _config(consistency_loss_coeff=0.0, critic_target="td")
    cfg.model = dataclasses.replace(cfg.model, critic_heads=2)
    torch.manual_seed(0)
    model, target = build_model(cfg.model, CONTINUOUS), build_model(cfg.model, CONTINUOUS)
    with torch.no_grad():
        for p in list(model.parameters()) + list(target.parameters()):
            p.add_(0.3 * torch.randn_like(p))
    learner = Learner(model, cfg, "continuous", torch.device("cpu"), target_model=target, discount=0.9)
    batch = dataclasses.replace(_batch(CONTINUOUS, B=8), next_continues=torch.ones(8))
    batch.next_continues[2] = 0.0
    torch.manual_seed(5)
    got = learner._critic_td_target(batch)
    torch.manual_seed(5)
    with torch.no_grad():
        latent, _, head = target.initial_inference(batch.obs[:, 1])
        action = SquashedGaussian.from_head(head).sample()
        x = torch.cat([latent, action], -1)
        q = torch.stack([target.value_support.logits_to_scalar(h(x)) for h in target.critic.heads]).min(0).values
    expected = batch.value_prefix[:, 0] + 0.9 * batch.next_continues * q
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert got[2].item() == pytest.approx(batch.value_prefix[2, 0].item(), abs=1e-6)
    # the loss trains every head towards that target where the first action was taken
    batch.action_mask[4, 0] = 0.0
    latent0, _, _ = model.initial_inference(batch.obs[:, 0])
    torch.manual_seed(5)
    loss = learner._critic_loss(latent0, batch)
    probs = model.value_support.scalar_to_probs(expected)
    x0 = torch.cat([latent0, batch.actions[:, 0]], -1)
    want = sum(_soft_ce(h(x0), probs) for h in model.critic.heads) * batch.action_mask[:, 0]
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-5)
    assert loss[4].item() == 0.0
    with pytest.raises(ValueError, match="critic_target='td' needs the target network"):
        Learner(model, cfg, "continuous", torch.device("cpu"))


def test_actor_loss_is_minus_the_min_q_over_its_range_and_trains_only_the_policy_head():
    """-min_i Q_i(s, a)/scale - c_H * entropy at a reparameterised from the policy on sg(latent): the gradient
    reaches the policy head and the prediction trunk, never the critic or the representation."""
    learner = _critic_learner(1.0, entropy_coeff=0.1)
    model = learner.model
    batch = _batch(CONTINUOUS, B=16)
    latent, _, _ = model.initial_inference(batch.obs[:, 0])
    torch.manual_seed(7)
    got, q_got = learner._actor_loss(latent)
    torch.manual_seed(7)
    with torch.no_grad():
        _, head = model.prediction(latent)
        dist = SquashedGaussian.from_head(head)
        action = dist.rsample()
        x = torch.cat([latent, action], -1)
        q = torch.stack([model.value_support.logits_to_scalar(h(x)) for h in model.critic.heads]).min(0).values
    scale = max(float(torch.quantile(q, 0.95) - torch.quantile(q, 0.05)), 1.0)
    torch.testing.assert_close(q_got, q, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.detach(), -q / scale - 0.1 * dist.entropy(), rtol=1e-5, atol=1e-5)
    model.zero_grad(set_to_none=True)
    got.sum().backward()
    assert all(p.grad is None for p in model.critic.parameters())
    assert all(p.grad is None for p in model.representation.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prediction.heads.policy.parameters())


def test_actor_term_enters_the_total_loss_with_its_coefficient_and_needs_continuous_actions():
    batch = _batch(CONTINUOUS)
    torch.manual_seed(3)
    off_loss, off, _ = _critic_learner(0.0).compute_loss(batch)
    on = _critic_learner(2.0)
    torch.manual_seed(3)
    loss, metrics, _ = on.compute_loss(batch)
    assert "loss/actor" in metrics and off["loss/actor"] == 0.0 and metrics["loss/actor"] != 0.0
    assert loss.item() == pytest.approx(off_loss.item() + 2.0 * metrics["loss/actor"], rel=1e-4, abs=1e-5)
    with pytest.raises(ValueError, match="critic_heads=2 needs continuous actions"):
        build_model(on.cfg.model, DISCRETE)


def _entropy_target_learner(total_updates=10, target=(0.5, -1.0), coeff=0.05):
    cfg = _config(entropy_coeff=coeff, entropy_target=list(target))
    cfg.optim = dataclasses.replace(cfg.optim, lr=0.1)
    torch.manual_seed(0)
    return Learner(build_model(cfg.model, CONTINUOUS), cfg, "continuous", torch.device("cpu"),
                   total_updates=total_updates)


def test_entropy_target_moves_log_coeff_by_lr_times_the_gap_to_a_linear_target():
    learner = _entropy_target_learner()
    assert learner.entropy_target_at(0) == 0.5 and learner.entropy_target_at(10) == -1.0
    assert learner.entropy_target_at(5) == pytest.approx(-0.25) and learner.entropy_target_at(99) == -1.0
    assert learner.entropy_coeff() == pytest.approx(0.05)
    metrics, _ = learner.update(_batch(CONTINUOUS), 4)
    entropy = metrics["train/policy_entropy"]
    expected = math.exp(math.log(0.05) + 0.1 * (learner.entropy_target_at(4) - entropy))
    assert metrics["train/entropy_coeff"] == pytest.approx(expected) == learner.entropy_coeff()
    narrow = _entropy_target_learner(target=(50.0, 50.0))  # far above any entropy: the coefficient grows
    narrow.update(_batch(CONTINUOUS), 0)
    assert narrow.entropy_coeff() > 0.05
    wide = _entropy_target_learner(target=(-500.0, -500.0))  # far below: it shrinks, down to its floor
    for step in range(3):
        wide.update(_batch(CONTINUOUS), step)
    assert wide.entropy_coeff() == pytest.approx(math.exp(ENTROPY_LOG_COEFF_BOUNDS[0]))


def test_entropy_target_coefficient_enters_the_policy_loss_and_survives_a_checkpoint_round_trip():
    learner = _entropy_target_learner()
    learner.entropy_log_coeff = math.log(0.2)
    fixed = _learner(CONTINUOUS, entropy_coeff=0.2)
    fixed.model.load_state_dict(learner.model.state_dict())
    batch = _batch(CONTINUOUS)
    torch.manual_seed(5)
    loss_learnt, _, _ = learner.compute_loss(batch)
    torch.manual_seed(5)
    loss_fixed, metrics_fixed, _ = fixed.compute_loss(batch)
    assert "train/policy_entropy" not in metrics_fixed  # the fixed coefficient draws no extra noise
    assert loss_learnt.item() == pytest.approx(loss_fixed.item(), rel=1e-5)
    restored = _entropy_target_learner()
    restored.load_state_dict(learner.state_dict())
    assert restored.entropy_coeff() == pytest.approx(0.2)
    restored.load_state_dict({})  # a checkpoint written before the option existed changes nothing
    assert restored.entropy_coeff() == pytest.approx(0.2)
