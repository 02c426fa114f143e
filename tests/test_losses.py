"""Per-sample loss functions."""
import pytest
import torch
from torch import nn

from ezrobot import losses
from ezrobot.distributions import SquashedGaussian
from ezrobot.nets import scale_gradient


def test_cross_entropy_values_and_minimum():
    target = torch.tensor([[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]])
    logits = torch.zeros(2, 3)
    out = losses.cross_entropy(logits, target)
    assert out.shape == (2,)
    torch.testing.assert_close(out, torch.full((2,), torch.log(torch.tensor(3.0)).item()))
    # minimised (to the target's entropy) at logits = log(target)
    best = losses.cross_entropy(torch.log(target[:1] + 1e-12), target[:1])
    entropy = -(0.25 * torch.log(torch.tensor(0.25)) + 0.75 * torch.log(torch.tensor(0.75)))
    assert best.item() == pytest.approx(entropy.item(), abs=1e-5)
    with pytest.raises(ValueError, match="shape"):
        losses.cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))


def test_cross_entropy_bf16_logits_are_computed_in_float32():
    logits = torch.randn(4, 601).bfloat16()
    target = torch.softmax(torch.randn(4, 601), -1)
    assert losses.cross_entropy(logits, target).dtype == torch.float32


def test_sampled_policy_cross_entropy_is_weighted_log_prob():
    head = torch.randn(2, 4, requires_grad=True)  # D = 2
    dist = SquashedGaussian.from_head(head)
    actions = torch.rand(2, 5, 2) * 1.8 - 0.9
    target = torch.softmax(torch.randn(2, 5), -1)
    out = losses.sampled_policy_cross_entropy(dist, actions, target)
    manual = torch.stack([-(target[b] * torch.stack([dist.log_prob(actions[b, k][None].expand(2, 2))[b]
                                                     for k in range(5)])).sum() for b in range(2)])
    torch.testing.assert_close(out, manual)
    out.sum().backward()
    assert head.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="sampled_actions"):
        losses.sampled_policy_cross_entropy(dist, actions, target[:, :3])


def test_gradient_ascent_on_sampled_ce_moves_mean_to_weighted_action():
    head = torch.zeros(1, 2, requires_grad=True)  # D = 1
    actions = torch.tensor([[[-0.5], [0.6], [0.9]]])
    target = torch.tensor([[0.0, 1.0, 0.0]])
    opt = torch.optim.Adam([head], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        losses.sampled_policy_cross_entropy(SquashedGaussian.from_head(head), actions, target).sum().backward()
        opt.step()
    assert SquashedGaussian.from_head(head).mode().item() == pytest.approx(0.6, abs=0.05)


def test_best_action_nll_and_entropy_bonus():
    dist = SquashedGaussian.from_head(torch.zeros(3, 4))
    a = torch.zeros(3, 2)
    torch.testing.assert_close(losses.best_action_nll(dist, a), -dist.log_prob(a))
    gen = torch.Generator().manual_seed(0)
    bonus = losses.entropy_bonus(dist, 0.05, num_samples=4, generator=gen)
    torch.testing.assert_close(bonus, -0.05 * dist.entropy(4, torch.Generator().manual_seed(0)))
    # a distribution on (-1, 1)^2 has entropy at most 2 log 2 (uniform); a narrow one is far below it
    wide = losses.entropy_bonus(dist, 1.0, num_samples=20_000)
    narrow = losses.entropy_bonus(SquashedGaussian(torch.zeros(3, 2), torch.full((3, 2), 0.05)), 1.0, 20_000)
    assert (-wide <= 2 * torch.log(torch.tensor(2.0)) + 0.02).all() and (narrow > wide + 2).all()
    with pytest.raises(ValueError, match="best_action"):
        losses.best_action_nll(dist, torch.zeros(3, 1, 2))


def test_consistency_is_negative_cosine_with_stop_gradient():
    online = nn.Linear(8, 4)
    target_net = nn.Linear(8, 4)
    x = torch.randn(5, 8)
    pred, target = online(x), target_net(x)
    out = losses.consistency(pred, target)
    torch.testing.assert_close(out, -torch.cosine_similarity(pred, target, dim=-1))
    out.sum().backward()
    assert online.weight.grad is not None and online.weight.grad.abs().sum() > 0
    assert target_net.weight.grad is None  # no gradient reaches the target branch
    same = losses.consistency(torch.ones(2, 3), 2 * torch.ones(2, 3))
    torch.testing.assert_close(same, -torch.ones(2))


def test_scale_gradient_identity_forward_scaled_backward():
    x = torch.randn(4, requires_grad=True)
    y = scale_gradient(x, 0.5)
    torch.testing.assert_close(y, x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((4,), 0.5))
