"""The continuous policy loss for multi-dimensional actions, against a hand computation."""
import math

import torch

from ezrobot import losses
from ezrobot.distributions import ACTION_CLIP, SquashedGaussian


def _hand_nll(mean, std, action):
    """-log pi(a) of a tanh-squashed diagonal Gaussian, one dimension at a time, with plain math."""
    total = 0.0
    for m, s, a in zip(mean, std, action):
        u = math.atanh(a)
        z = (u - m) / s
        log_gauss = -0.5 * z * z - math.log(s) - 0.5 * math.log(2.0 * math.pi)
        log_jacobian = math.log(1.0 - a * a)  # d tanh(u) / du = 1 - tanh(u)^2
        total += log_gauss - log_jacobian
    return -total


def test_best_action_nll_matches_hand_computation_for_three_dims():
    mean = [0.3, -1.2, 0.0]
    std = [0.5, 1.1, 0.2]
    action = [0.1, -0.7, 0.05]
    dist = SquashedGaussian(torch.tensor([mean]), torch.tensor([std]))
    got = losses.best_action_nll(dist, torch.tensor([action]))
    assert got.shape == (1,)
    assert abs(got.item() - _hand_nll(mean, std, action)) < 1e-4


def test_best_action_nll_gradient_moves_the_mean_towards_the_action_in_every_dim():
    head = torch.zeros(1, 6, requires_grad=True)  # D = 3: 3 means, 3 pre-softplus stds
    action = torch.tensor([[0.5, -0.5, 0.0]])
    losses.best_action_nll(SquashedGaussian.from_head(head), action).sum().backward()
    grad_mean = head.grad[0, :3]
    assert grad_mean[0] < 0 and grad_mean[1] > 0  # descent raises mu_0 and lowers mu_1
    assert abs(grad_mean[2].item()) < 1e-6  # already at the action's pre-tanh value


def test_policy_action_clip_bounds_a_saturated_target_by_hand():
    """``train.policy_action_clip``: a* = +-1 is scored as +-clip; EZ-V2's 0.999 puts its pre-tanh target at
    atanh(0.999) = 3.80 where the default 1 - 1e-6 puts it at 7.25."""
    mean, std = [0.0, 1.0], [2.0, 3.0]
    dist = SquashedGaussian(torch.tensor([mean]), torch.tensor([std]))
    action = torch.tensor([[1.0, -1.0]])
    got = losses.best_action_nll(dist, action, clip=0.999).item()
    assert abs(got - _hand_nll(mean, std, [0.999, -0.999])) < 1e-3
    # A saturated target widens sigma (mu = 0, sigma = softplus(1) + 0.1 = 1.41), by a gradient of
    # -(z^2 - 1) / sigma * dsigma/dx with z = atanh(clip) / sigma: 4 times larger at the default clip.
    widen = {}
    for clip in (0.999, 1.0 - 1e-6):
        head = torch.tensor([[0.0, 0.0]], requires_grad=True)  # D = 1
        losses.best_action_nll(SquashedGaussian.from_head(head), torch.tensor([[1.0]]), clip=clip).sum().backward()
        widen[clip] = -head.grad[0, 1].item()
        sigma = math.log1p(math.e) + 0.1
        z = math.atanh(clip) / sigma
        assert abs(widen[clip] - (z * z - 1.0) / sigma * (1.0 / (1.0 + math.exp(-1.0)))) < 1e-2 * widen[clip]
    assert widen[1.0 - 1e-6] > 3.0 * widen[0.999] > 0


def test_clipped_entropy_brakes_sigma_less_once_it_saturates_the_tanh():
    """EZ-V2's entropy estimate (samples clipped to +-0.999) against the unclipped squashed entropy: the same
    inside the tanh's linear range; past saturation the bonus's pull on sigma is far weaker, because the
    clipped samples' Jacobian term stops at log(1 - 0.999^2) per dimension."""
    grads = {}
    for s in (1.0, 6.0):
        for clip in (ACTION_CLIP, 0.999):
            std = torch.full((1, 1), s, requires_grad=True)
            entropy = SquashedGaussian(torch.zeros(1, 1), std).entropy(20000, torch.Generator().manual_seed(0), clip)
            entropy.sum().backward()
            grads[s, clip] = std.grad.item()
    assert abs(grads[1.0, 0.999] - grads[1.0, ACTION_CLIP]) < 0.05
    assert grads[6.0, ACTION_CLIP] < 0 and grads[6.0, 0.999] < 0  # past saturation both estimates fall with sigma
    assert abs(grads[6.0, 0.999]) < 0.2 * abs(grads[6.0, ACTION_CLIP])
    # Without a clip below the default the estimate is the unclipped one.
    same = SquashedGaussian(torch.zeros(1, 1), torch.ones(1, 1))
    a = same.entropy(64, torch.Generator().manual_seed(1))
    b = same.entropy(64, torch.Generator().manual_seed(1), clip=1.0 - 1e-6)
    assert torch.equal(a, b)


def test_split_policy_loss_moves_the_mean_by_a_star_and_sigma_by_the_importance_target():
    """``train.policy_loss=split``: d/d mu is that of -log pi(a*) alone, d/d sigma that of the cross-entropy
    over the samples alone, each by autograd on the two losses computed separately."""
    torch.manual_seed(0)
    mean = torch.randn(5, 3, requires_grad=True)
    std = (torch.rand(5, 3) + 0.3).requires_grad_(True)
    best = torch.tanh(torch.randn(5, 3))
    sampled = torch.tanh(torch.randn(5, 16, 3) * 2.0)
    probs = torch.softmax(torch.randn(5, 16), dim=-1)
    loss = losses.split_policy_loss(SquashedGaussian(mean, std), best, sampled, probs, 0.999).sum()
    grad_mean, grad_std = torch.autograd.grad(loss, (mean, std))
    want_mean = torch.autograd.grad(losses.best_action_nll(SquashedGaussian(mean, std), best, 0.999).sum(), mean)[0]
    want_std = torch.autograd.grad(
        losses.sampled_policy_cross_entropy(SquashedGaussian(mean, std), sampled, probs, 0.999).sum(), std)[0]
    torch.testing.assert_close(grad_mean, want_mean)
    torch.testing.assert_close(grad_std, want_std)
    full = losses.best_action_nll(SquashedGaussian(mean, std), best, 0.999).sum()
    assert not torch.allclose(torch.autograd.grad(full, std)[0], grad_std)  # the a* term does not move sigma
