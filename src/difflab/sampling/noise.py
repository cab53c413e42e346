"""Sources of Gaussian noise for samplers.

With a seed, row i of every draw comes from its own generator seeded by (seed, index_i), so sample i is the
same image whatever the batch size, the batch it falls in, or the number of processes drawing samples.
"""

import torch


def _mix(seed: int, index: int) -> int:
    """A 63-bit generator seed from (seed, index) (splitmix64-style), distinct for distinct pairs in practice."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


class PerSampleNoise:
    """Noise whose row i is drawn from a CPU generator seeded by (seed, indices[i]); moved to `device`."""

    def __init__(self, seed: int, indices, device="cpu"):
        self.generators = [torch.Generator().manual_seed(_mix(int(seed), int(i))) for i in indices]
        self.device = torch.device(device)

    def __call__(self, shape, dtype=torch.float32) -> torch.Tensor:
        """[N x *shape] standard normal, N = len(indices)."""
        rows = [torch.randn(tuple(shape), generator=g, dtype=torch.float32) for g in self.generators]
        return torch.stack(rows).to(device=self.device, dtype=dtype)


class GlobalNoise:
    """Unseeded noise: N rows from torch's default generator on `device`."""

    def __init__(self, num: int, device="cpu"):
        self.num = num
        self.device = torch.device(device)

    def __call__(self, shape, dtype=torch.float32) -> torch.Tensor:
        return torch.randn((self.num, *shape), device=self.device, dtype=dtype)


def make_noise(num: int, seed: int | None, start: int = 0, device="cpu"):
    """Noise for samples start .. start+num-1: reproducible per sample with a seed, else global RNG."""
    if seed is None:
        return GlobalNoise(num, device)
    return PerSampleNoise(seed, range(start, start + num), device)
