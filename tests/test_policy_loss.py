"""The continuous policy loss for multi-dimensional actions, against a hand computation."""
import math

import torch

from ezrobot import losses
from ezrobot.distributions import SquashedGaussian


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
