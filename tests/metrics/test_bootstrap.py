"""FID error bars: the fast Frechet distance against torchmetrics and a closed form, the bootstrap spread against
the spread over independent sample sets, and the paired ratio interval."""

import pytest
import torch
from torchmetrics.image.fid import _compute_fid

from difflab.errors import ConfigError
from difflab.metrics.bootstrap import FrechetToReference, fid_interval, mean_and_cov, paired_fid_difference


def test_frechet_distance_matches_torchmetrics_and_closed_form():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    fake = torch.randn(300, 6, generator=g, dtype=torch.float64) * 0.7 + 0.3
    ref = FrechetToReference(*mean_and_cov(real))
    mu, cov = mean_and_cov(fake)
    expected = _compute_fid(mu, cov, *mean_and_cov(real))
    assert ref(fake) == pytest.approx(float(expected), rel=1e-8)
    # from torchmetrics-style running sums
    sums = FrechetToReference.from_sums(real.sum(0), real.T @ real, len(real))
    assert sums(fake) == pytest.approx(ref(fake), rel=1e-8)
    # closed form for commuting covariances: |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64), torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
    signs = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=torch.float64)
    fake = signs * (a * 5 / 2).sqrt() + 0.5  # sample covariance exactly diag(a), mean 0.5
    closed = 3 * 0.5**2 + ((a.sqrt() - b.sqrt()) ** 2).sum()
    assert FrechetToReference(torch.zeros(3), torch.diag(b))(fake) == pytest.approx(float(closed), rel=1e-10)


def test_bootstrap_std_matches_the_spread_over_independent_sample_sets():
    dim, n = 8, 200
    reference = FrechetToReference(torch.zeros(dim), torch.eye(dim))
    scale = torch.linspace(0.6, 1.4, dim)
    g = torch.Generator().manual_seed(1)
    draws = [torch.randn(n, dim, generator=g) * scale + 0.2 for _ in range(60)]
    spread = torch.tensor([reference(f) for f in draws]).std().item()
    boot = torch.tensor([fid_interval(f, reference, 100, seed=k).std for k, f in enumerate(draws[:6])]).mean().item()
    print(f"FID spread over independent sets {spread:.4f}, bootstrap std {boot:.4f}")
    assert 0.6 < boot / spread < 1.6
    one = fid_interval(draws[0], reference, 100, seed=0)
    assert one.low < one.high and fid_interval(draws[0], reference, 100, seed=0) == one  # reproducible resamples


def test_paired_difference_interval_is_tighter_than_separate_error_bars():
    dim, n = 8, 300
    reference = FrechetToReference(torch.zeros(dim), torch.eye(dim))
    g = torch.Generator().manual_seed(2)
    base = torch.randn(n, dim, generator=g) * 1.2 + 0.1
    better = base * 0.95 + 0.01 * torch.randn(n, dim, generator=g)  # the same samples, a little closer to N(0, I)
    paired = paired_fid_difference(better, base, reference, 200, seed=0)
    assert paired.value == pytest.approx(reference(better) - reference(base))
    assert paired.high < 0  # significantly better, though each FID alone has a wide error bar
    a, b = fid_interval(better, reference, 200), fid_interval(base, reference, 200)
    assert a.high > b.low  # separate error bars overlap
    assert paired.low < paired.value < paired.high  # the repeated-image bias cancels in the difference
    with pytest.raises(ConfigError, match="equal size"):
        paired_fid_difference(better[:10], base, reference)
    with pytest.raises(ConfigError, match="fid_bootstrap=1"):
        fid_interval(base, reference, 1)
