"""FID extrapolated to infinitely many samples (FID_inf; Chong & Forsyth 2020, arXiv:1911.07023).

The FID of n samples is biased upward by about k / n (the sample covariance's noise adds to the trace term); k
depends on the features and the model, so FIDs of two models at one n are not in proportion to their distances.
Near the floor the bias dominates: 1024 real Fashion-MNIST training images score ~0.7 FID-domain against the test
statistics, yet ~0.001 extrapolated. FID_inf fits FID(n) = FID_inf + k / n over random subsets of the samples and
reads off the intercept; ratios of FIDs should be ratios of FID_inf.
"""

import torch

from difflab.errors import ConfigError
from difflab.metrics.bootstrap import FrechetToReference


def default_sizes(n: int, points: int = 7) -> list[int]:
    """`points` subset sizes spread evenly from n/4 to n (distinct, each >= 2)."""
    sizes = torch.linspace(n / 4, n, points).round().long().clamp_min(2).unique()
    return [int(s) for s in sizes]


def fid_curve(features: torch.Tensor, reference: FrechetToReference, sizes: list[int], draws: int = 20,
              seed: int = 0) -> list[float]:
    """Mean FID of `draws` random subsets (without replacement) of each size in `sizes` of features [N x D]; the
    full set once where the size is N."""
    g = torch.Generator().manual_seed(seed)
    n = len(features)
    out = []
    for size in sizes:
        if not 2 <= size <= n:
            raise ConfigError(f"subset size {size} is invalid; allowed: 2 .. {n} (the number of samples)")
        subsets = [torch.randperm(n, generator=g)[:size] for _ in range(draws if size < n else 1)]
        out.append(sum(reference(features[i]) for i in subsets) / len(subsets))
    return out


def fid_infinity(features: torch.Tensor, reference: FrechetToReference, sizes: list[int] | None = None,
                 draws: int = 20, seed: int = 0) -> tuple[float, float]:
    """(FID_inf, k): the least-squares line FID(n) = FID_inf + k / n through fid_curve at `sizes` (default
    default_sizes(N)). Its noise is about the FID's own bootstrap std at N samples."""
    if len(features) < 8:
        raise ConfigError(f"FID_inf needs at least 8 samples to extrapolate from; got {len(features)}")
    sizes = default_sizes(len(features)) if sizes is None else sizes
    values = torch.tensor(fid_curve(features, reference, sizes, draws, seed), dtype=torch.float64)
    design = torch.stack([torch.ones(len(sizes)), 1 / torch.tensor(sizes, dtype=torch.float64)], dim=1)
    intercept, slope = torch.linalg.lstsq(design, values[:, None]).solution[:, 0]
    return float(intercept), float(slope)
