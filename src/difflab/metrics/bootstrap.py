"""Error bars for FID: bootstrap over the generated set, with the real statistics held fixed.

An FID from a few hundred samples is noisy (FID-domain on Fashion-MNIST from 256 samples moves by 0.5-0.9 between
seeds). Resampling the generated features with replacement and recomputing the distance to the same real
statistics gives its spread (`fid_std`; the bootstrapped values themselves sit above the FID, as repeated images
count as a narrower sample). Two sample sets drawn from the same noise (sample i seeded by (seed, i), e.g. two
samplers of one model) are resampled with the same indices: the paired interval of their FID difference is much
tighter than two separate error bars.
"""

from dataclasses import dataclass

import torch

from difflab.errors import ConfigError


def mean_and_cov(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [D] and unbiased covariance [D x D] (float64) of features [N x D]."""
    f = features.double()
    mean = f.mean(0)
    centred = f - mean
    return mean, centred.T @ centred / (len(f) - 1)


class FrechetToReference:
    """Frechet distance of feature sets to one fixed Gaussian N(mean, cov) (the real images), fast for many sets.

    Tr((C R)^1/2) = Tr((R^1/2 C R^1/2)^1/2): with R^1/2 computed once, each set needs one symmetric eigenvalue
    problem; equal to torchmetrics' FrechetInceptionDistance on the same statistics (tests)."""

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor):
        self.mean, self.cov = mean.double(), cov.double()
        w, v = torch.linalg.eigh((self.cov + self.cov.T) / 2)
        self.root = (v * w.clamp_min(0).sqrt()) @ v.T
        self.trace = self.cov.trace()

    @classmethod
    def from_sums(cls, total: torch.Tensor, outer_total: torch.Tensor, n) -> "FrechetToReference":
        """From running sums (sum f, sum f f^T, n), as torchmetrics' FID keeps the real features."""
        n = float(n)
        mean = total.double() / n
        return cls(mean, (outer_total.double() - n * torch.outer(mean, mean)) / (n - 1))

    def __call__(self, features: torch.Tensor) -> float:
        mean, cov = mean_and_cov(features)
        m = self.root @ cov @ self.root
        cross = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
        return float((mean - self.mean).square().sum() + cov.trace() + self.trace - 2 * cross)


def bootstrap_indices(n: int, resamples: int, seed: int) -> torch.Tensor:
    """[resamples x n] indices drawn with replacement from a generator seeded by `seed` (reproducible)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (resamples, n), generator=g)


@dataclass(frozen=True)
class Interval:
    value: float   # on the full set
    std: float     # bootstrap standard deviation
    low: float     # 5th percentile of the bootstrap
    high: float    # 95th percentile


def _interval(value: float, boots: torch.Tensor) -> Interval:
    q = torch.quantile(boots, torch.tensor([0.05, 0.95], dtype=boots.dtype))
    return Interval(value, float(boots.std()), float(q[0]), float(q[1]))


def fid_interval(features: torch.Tensor, reference: FrechetToReference, resamples: int = 100,
                 seed: int = 0) -> Interval:
    """FID of generated features [N x D] against `reference`, with its bootstrap spread."""
    if resamples < 2:
        raise ConfigError(f"fid_bootstrap={resamples} is invalid; allowed: 0 (off) or an integer >= 2")
    boots = torch.tensor([reference(features[i]) for i in bootstrap_indices(len(features), resamples, seed)],
                         dtype=torch.float64)
    return _interval(reference(features), boots)


def paired_fid_difference(features: torch.Tensor, baseline: torch.Tensor, reference: FrechetToReference,
                          resamples: int = 100, seed: int = 0) -> Interval:
    """FID(features) - FID(baseline) where row i of both sets came from the same noise; the bootstrap draws the
    same rows from both, so the interval reflects the samplers' difference, not the luck of the noise draw.

    A difference, not a ratio: resampling with replacement repeats images, which raises every bootstrapped FID by
    about the same amount (+0.65 for 1024 Fashion-MNIST samples), so it cancels in the difference and not in a
    ratio (a ratio's percentile interval then misses its own point estimate)."""
    if features.shape != baseline.shape:
        raise ConfigError(f"paired FID needs two sets of equal size, seeded alike; got {tuple(features.shape)} "
                          f"and {tuple(baseline.shape)}")
    idx = bootstrap_indices(len(features), resamples, seed)
    boots = torch.tensor([reference(features[i]) - reference(baseline[i]) for i in idx], dtype=torch.float64)
    return _interval(reference(features) - reference(baseline), boots)
