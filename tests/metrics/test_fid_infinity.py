"""FID_inf: extrapolating FID(n) = FID_inf + k / n removes the finite-sample bias (Gaussian features, exact reference)."""

import pytest
import torch

from difflab.errors import ConfigError
from difflab.metrics.bootstrap import FrechetToReference
from difflab.metrics.fid_infinity import default_sizes, fid_curve, fid_infinity

DIM = 16


def _sets(shift: float, seeds=range(3), n=1024):
    scale = torch.linspace(0.8, 1.2, DIM)
    true = shift + float(((scale - 1) ** 2).sum())  # Frechet distance of N(m, diag(scale^2)) to N(0, I), |m|^2 = shift
    mean = torch.full((DIM,), (shift / DIM) ** 0.5)
    sets = [torch.randn(n, DIM, generator=torch.Generator().manual_seed(s)) * scale + mean for s in seeds]
    return true, sets


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_fid_infinity_removes_the_finite_sample_bias(shift):
    reference = FrechetToReference(torch.zeros(DIM), torch.eye(DIM))  # the population itself: no real-side noise
    true, sets = _sets(shift)
    finite = sum(reference(f) for f in sets) / len(sets)
    extrapolated = sum(fid_infinity(f, reference)[0] for f in sets) / len(sets)
    print(f"true {true:.4f}, FID at 1024 {finite:.4f}, FID_inf {extrapolated:.4f}")
    assert finite - true > 0.05  # the bias this corrects: ~k/n, k ~ D (D + 1) / 2 / 1.6
    assert abs(extrapolated - true) < 0.03


def test_fid_curve_falls_like_one_over_n():
    reference = FrechetToReference(torch.zeros(DIM), torch.eye(DIM))
    _, (features,) = _sets(0.0, seeds=[7])
    sizes = default_sizes(len(features))
    assert sizes == sorted(set(sizes)) and sizes[0] == 256 and sizes[-1] == 1024 and len(sizes) == 7
    curve = fid_curve(features, reference, sizes)
    assert all(a > b for a, b in zip(curve, curve[1:]))
    intercept, slope = fid_infinity(features, reference)
    assert curve[0] == pytest.approx(intercept + slope / 256, rel=0.1)


def test_fid_infinity_rejects_too_few_samples_and_bad_sizes():
    reference = FrechetToReference(torch.zeros(DIM), torch.eye(DIM))
    with pytest.raises(ConfigError, match="at least 8 samples"):
        fid_infinity(torch.randn(5, DIM), reference)
    with pytest.raises(ConfigError, match="subset size 50 is invalid"):
        fid_curve(torch.randn(20, DIM), reference, [10, 50])
