"""The per-sample noise generator: exact integer hashing, per-sample reproducibility, and Gaussian statistics."""

import random

import pytest
import torch
from scipy import stats

from difflab.sampling.noise import make_noise, mix_seed, splitmix64

M64 = (1 << 64) - 1


def splitmix64_reference(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def test_splitmix64_matches_unsigned_reference():
    """int64 tensor arithmetic must wrap as uint64 does and the shifts must be logical: checked word for word."""
    rng = random.Random(0)
    words = [rng.getrandbits(64) for _ in range(2000)] + [0, 1, M64, 1 << 63, (1 << 63) - 1]
    signed = torch.tensor([w - (1 << 64) if w >= 1 << 63 else w for w in words], dtype=torch.int64)
    assert [int(v) & M64 for v in splitmix64(signed)] == [splitmix64_reference(w) for w in words]


def test_sample_i_depends_only_on_seed_and_index():
    whole = make_noise(10, seed=3)
    first, second = [whole((2, 3, 5)) for _ in range(2)]
    part = make_noise(4, seed=3, start=6)  # samples 6..9 drawn in a batch of their own
    torch.testing.assert_close(part((2, 3, 5)), first[6:], rtol=0, atol=0)
    torch.testing.assert_close(part((2, 3, 5)), second[6:], rtol=0, atol=0)
    assert not torch.equal(first, second)  # each draw is new noise
    assert not torch.equal(make_noise(10, seed=4)((2, 3, 5)), first)
    assert not torch.equal(first[0], first[1])


def test_the_seed_mixer_separates_pairs():
    keys = {mix_seed(s, i) for s in range(20) for i in range(500)}
    assert len(keys) == 20 * 500 and all(0 <= k < 1 << 63 for k in keys)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 5, 7)])  # odd sizes use half of the last Box-Muller pair
def test_noise_is_standard_normal_and_uncorrelated(shape):
    noise = make_noise(400, seed=1)
    draws = torch.stack([noise(shape).flatten(1) for _ in range(3)], dim=1)  # [N x draws x values]
    values = draws.flatten().double()
    assert stats.kstest(values.numpy(), "norm").pvalue > 1e-3
    assert abs(values.mean()) < 5 / len(values) ** 0.5 and abs(values.var() - 1) < 0.02
    per_sample = draws.flatten(1)  # correlations across elements and draws, over the 400 samples
    corr = torch.corrcoef(per_sample.T) - torch.eye(per_sample.shape[1], dtype=per_sample.dtype)
    assert corr.abs().max() < 6 / 400**0.5  # about 6 standard errors, over some 10^5 pairs
    assert draws.dtype == torch.float32
    assert make_noise(4, seed=1)(shape, torch.float64).dtype == torch.float64
