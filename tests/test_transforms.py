"""h / h^-1 and DiscreteSupport two-hot projection."""
import numpy as np
import pytest
import torch

from ezrobot.transforms import DiscreteSupport, EPSILON, atari_support, h, h_inv, proprio_support


def test_h_formula_matches_reference():
    x = torch.tensor([-5.0, -0.5, 0.0, 0.5, 3.0, 99.0], dtype=torch.float64)
    expected = torch.sign(x) * (torch.sqrt(x.abs() + 1) - 1) + EPSILON * x
    torch.testing.assert_close(h(x), expected)
    # eps*x is outside the sign product: h(-x) = -h(x) still, and h(3) = 1 + 0.003.
    assert h(torch.tensor(3.0, dtype=torch.float64)).item() == pytest.approx(1.003)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_h_inv_round_trip_including_large_values(dtype):
    x = torch.cat([torch.linspace(-1e5, 1e5, 2001, dtype=dtype), torch.linspace(-3, 3, 601, dtype=dtype)])
    rel = 1e-9 if dtype == torch.float64 else 2e-4
    torch.testing.assert_close(h_inv(h(x)), x, rtol=rel, atol=1e-3 if dtype == torch.float32 else 1e-9)
    y = torch.linspace(-300, 300, 601, dtype=dtype)  # the whole Atari support in h-space
    torch.testing.assert_close(h(h_inv(y)), y, rtol=rel, atol=1e-3 if dtype == torch.float32 else 1e-9)


def test_numpy_and_torch_agree():
    x = np.linspace(-1000, 1000, 101)
    np.testing.assert_allclose(h(x), h(torch.tensor(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(h_inv(h(x)), x, rtol=1e-9, atol=1e-9)


def test_two_hot_expectation_recovers_scalar_and_uses_two_neighbours():
    support = atari_support()
    x = torch.tensor([0.0, 1.0, -7.3, 42.42, 1234.5, -20000.0])
    probs = support.scalar_to_probs(x)
    assert probs.shape == (6, 601)
    torch.testing.assert_close(probs.sum(-1), torch.ones(6))
    assert int((probs > 0).sum(-1).max()) <= 2
    for row, value in zip(probs, h(x)):
        nz = torch.nonzero(row).flatten()
        if len(nz) == 2:
            assert nz[1] - nz[0] == 1
            assert support.atoms()[nz[0]] <= value <= support.atoms()[nz[1]]
    torch.testing.assert_close((probs * support.atoms()).sum(-1), h(x), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(support.probs_to_scalar(probs), x, rtol=1e-4, atol=1e-3)


def test_two_hot_clips_outside_the_support():
    support = DiscreteSupport(-2.0, 2.0, 5)
    probs = support.scalar_to_probs(torch.tensor([1e6, -1e6]))
    torch.testing.assert_close(probs, torch.tensor([[0, 0, 0, 0, 1.0], [1.0, 0, 0, 0, 0]]))


def test_two_hot_weights_on_a_coarse_support():
    support = proprio_support()  # 51 atoms over [-25, 25]: step 1 in h-space
    target_h = torch.tensor([3.25])
    probs = support.scalar_to_probs(h_inv(target_h))
    centre = 25  # index of atom 0
    assert probs[0, centre + 3].item() == pytest.approx(0.75, abs=1e-4)
    assert probs[0, centre + 4].item() == pytest.approx(0.25, abs=1e-4)


def test_logits_to_scalar_uniform_is_zero_and_peaked_is_atom():
    support = atari_support()
    assert support.logits_to_scalar(torch.zeros(3, 601)).abs().max().item() < 1e-4
    logits = torch.full((1, 601), -1e4)
    logits[0, 300 + 10] = 0.0
    assert support.logits_to_scalar(logits).item() == pytest.approx(h_inv(torch.tensor(10.0)).item(), rel=1e-5)
    np.testing.assert_allclose(support.logits_to_scalar_np(logits.numpy()),
                               support.logits_to_scalar(logits).numpy(), rtol=1e-5)


def test_scalar_range_and_bad_arguments():
    lo, hi = proprio_support().scalar_range
    assert hi == pytest.approx(-lo) and 600 < hi < 700
    with pytest.raises(ValueError, match="bins=1"):
        DiscreteSupport(-1, 1, 1)
    with pytest.raises(ValueError, match="max > min"):
        DiscreteSupport(1, 1, 3)
    with pytest.raises(ValueError, match="bins"):
        atari_support().logits_to_scalar(torch.zeros(2, 51))
