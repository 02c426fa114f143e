"""Tanh-squashed Gaussian: EZ-V2 parameterisation, log-prob against Monte-Carlo histograms, entropy."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from ezrobot.distributions import SquashedGaussian, head_to_mean_std


def test_parameterisation_from_head():
    head = torch.tensor([[0.0, 100.0, -100.0, 0.0, 100.0, -100.0]])  # D = 3: x_mu | x_sigma
    mean, std = head_to_mean_std(head)
    torch.testing.assert_close(mean[0, 0], torch.tensor(0.0))
    assert mean[0, 1].item() == pytest.approx(5.0, abs=1e-4) and mean[0, 2].item() == pytest.approx(-5.0, abs=1e-4)
    assert std[0, 0].item() == pytest.approx(math.log1p(math.e) + 0.1, rel=1e-6)  # softplus(0 + 1) + 0.1
    assert std[0, 1].item() == pytest.approx(101.1, rel=1e-5)
    assert std[0, 2].item() == pytest.approx(0.1, abs=1e-6)
    x = torch.randn(4, 6)
    mean, std = head_to_mean_std(x)
    torch.testing.assert_close(mean, 5 * torch.tanh(x[:, :3] / 5))
    torch.testing.assert_close(std, F.softplus(x[:, 3:] + 1) + 0.1)
    with pytest.raises(ValueError, match="even"):
        head_to_mean_std(torch.zeros(2, 3))


def test_log_prob_matches_histogram_density_1d():
    gen = torch.Generator().manual_seed(0)
    dist = SquashedGaussian(torch.tensor([[0.4]]), torch.tensor([[0.7]]))
    n = 400_000
    samples = dist.sample(num_samples=n, generator=gen)[0, :, 0]  # [n]
    edges = torch.linspace(-1, 1, 41)
    counts = torch.histc(samples, bins=40, min=-1, max=1)
    mc_mass = counts / n
    # exact bin mass by integrating exp(log_prob) on a fine grid inside each bin
    fine = torch.linspace(0, 1, 201)[1:-1]
    grid = edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * fine  # [40, 199]
    density = dist.log_prob(grid.reshape(1, -1, 1)).exp().reshape(40, -1)
    exact_mass = density.mean(-1) * (edges[1:] - edges[:-1])
    assert exact_mass.sum().item() == pytest.approx(1.0, abs=2e-3)
    big = exact_mass > 5e-3
    rel = ((mc_mass[big] - exact_mass[big]).abs() / exact_mass[big]).max().item()
    assert rel < 0.05, rel


def test_log_prob_matches_histogram_2d_and_torch_reference():
    gen = torch.Generator().manual_seed(1)
    mean, std = torch.tensor([[-0.5, 0.8]]), torch.tensor([[0.5, 0.9]])
    dist = SquashedGaussian(mean, std)
    n = 300_000
    s = dist.sample(num_samples=n, generator=gen)[0]  # [n, 2]
    bins = 10
    idx = ((s + 1) / 2 * bins).clamp(0, bins - 1e-6).long()
    counts = torch.zeros(bins, bins).index_put_((idx[:, 0], idx[:, 1]), torch.ones(n), accumulate=True)
    centres = (torch.arange(bins) + 0.5) / bins * 2 - 1
    # midpoint rule with 16x16 points per cell
    sub = (torch.arange(16) + 0.5) / 16 * (2 / bins) - 1 / bins
    pts = (centres[:, None] + sub).reshape(-1)
    xx, yy = torch.meshgrid(pts, pts, indexing="ij")
    grid = torch.stack([xx, yy], -1).reshape(1, -1, 2)
    dens = dist.log_prob(grid).exp().reshape(bins, 16, bins, 16)
    exact = dens.mean((1, 3)) * (2 / bins) ** 2
    assert exact.sum().item() == pytest.approx(1.0, abs=1e-2)
    big = exact > 0.01
    rel = ((counts / n)[big] - exact[big]).abs() / exact[big]
    assert rel.max().item() < 0.06, rel.max().item()
    reference = TransformedDistribution(Normal(mean, std), [TanhTransform()])
    a = torch.tanh(mean + std * torch.randn(50, 2, generator=gen))
    torch.testing.assert_close(dist.log_prob(a.unsqueeze(0))[0], reference.log_prob(a).sum(-1),
                               rtol=1e-4, atol=1e-4)


def test_log_prob_is_finite_at_the_bounds_and_broadcasts():
    dist = SquashedGaussian.from_head(torch.zeros(3, 4))  # B = 3, D = 2
    edge = torch.tensor([[1.0, -1.0]] * 3)
    assert torch.isfinite(dist.log_prob(edge)).all()
    assert dist.log_prob(torch.zeros(3, 5, 2)).shape == (3, 5)
    with pytest.raises(ValueError, match="D=2"):
        dist.log_prob(torch.zeros(3, 3))


def test_entropy_estimate_matches_monte_carlo_and_has_gradient():
    gen = torch.Generator().manual_seed(2)
    head = torch.tensor([[0.3, -0.2, 0.1, -1.0]], requires_grad=True)
    dist = SquashedGaussian.from_head(head)
    samples = dist.sample(num_samples=200_000, generator=gen)
    mc = -dist.log_prob(samples).mean().item()
    est = dist.entropy(num_samples=200_000, generator=gen)
    assert est.item() == pytest.approx(mc, abs=0.01)
    dist.entropy().sum().backward()
    assert head.grad is not None and head.grad.abs().sum() > 0


def test_rsample_sample_mode():
    gen = torch.Generator().manual_seed(3)
    head = torch.randn(4, 6, requires_grad=True)
    dist = SquashedGaussian.from_head(head)
    a = dist.rsample(generator=gen)
    assert a.shape == (4, 3) and a.abs().max() < 1
    a.sum().backward()
    assert head.grad.abs().sum() > 0
    assert dist.sample(num_samples=7).shape == (4, 7, 3)
    assert not dist.sample().requires_grad
    torch.testing.assert_close(dist.mode(), torch.tanh(dist.mean))
