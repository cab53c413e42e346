"""Sources of Gaussian noise for samplers.

With a seed, row i of every draw is a function of (seed, index_i, draw number) alone, so sample i is the same
image whatever the batch size, the batch it falls in, the device, or the number of processes drawing samples.
The rows come from a counter-based generator (a hash of key and counter, as Philox and JAX's threefry do):
one batched computation per draw for all rows, on the device the noise is used on, instead of one generator
object and one call per sample.
"""

import math

import torch

_M64 = 0xFFFFFFFFFFFFFFFF


def mix_seed(seed: int, index: int) -> int:
    """A 63-bit generator seed from (seed, index) (splitmix64-style), distinct for distinct pairs in practice."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 1) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


def keyed_generator(seed: int, *key: int, device="cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded by (seed, *key) through mix_seed: one stream per place in a run."""
    for k in key:
        seed = mix_seed(seed, k)
    return torch.Generator(device=device).manual_seed(seed)


def _i64(c: int) -> torch.Tensor:
    """A 64-bit constant as a 0-dim int64 tensor (two's complement): torch's bitwise ops take a slow path for
    Python ints beyond int32, and int64 arithmetic wraps modulo 2^64 as uint64 arithmetic does."""
    return torch.tensor(c - (1 << 64) if c >= 1 << 63 else c, dtype=torch.int64)


_GAMMA, _C1, _C2 = _i64(0x9E3779B97F4A7C15), _i64(0xBF58476D1CE4E5B9), _i64(0x94D049BB133111EB)
_LOW = {s: _i64((1 << (64 - s)) - 1) for s in (27, 30, 31, 32)}


def _lsr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's >> on int64 is arithmetic)."""
    return (z >> s) & _LOW[s]


def splitmix64(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser (Steele et al. 2014) over int64 tensors read as 64-bit words."""
    z = (z ^ _lsr(z, 30)) * _C1
    z = (z ^ _lsr(z, 27)) * _C2
    return z ^ _lsr(z, 31)


def counter_normal(keys: torch.Tensor, draw: int, shape, dtype=torch.float32) -> torch.Tensor:
    """[N x *shape] standard normal; row i is a function of (keys[i], draw) only. keys: [N] int64.

    Word m of row i is splitmix64(key_i + (c_m + 1) gamma), the splitmix64 stream of key_i at counter
    c_m = draw 2^32 + m; its two 32-bit halves are two uniforms, which Box-Muller turns into values 2m, 2m + 1."""
    numel = math.prod(shape)
    pairs = (numel + 1) // 2
    if pairs >= 1 << 32:
        raise ValueError(f"a draw of {numel} values per sample is more than the generator's counter holds")
    counters = torch.arange(1, pairs + 1, device=keys.device, dtype=torch.int64) + (draw << 32)
    bits = splitmix64(keys[:, None] + counters[None] * _GAMMA)
    u1 = (_lsr(bits, 32).double() + 1) * 2.0**-32  # (0, 1]: the log stays finite
    u2 = (bits & _LOW[32]).double() * (2 * math.pi * 2.0**-32)
    radius = torch.sqrt(-2 * torch.log(u1))
    z = torch.stack([radius * torch.cos(u2), radius * torch.sin(u2)], dim=-1).flatten(1)[:, :numel]
    return z.to(dtype).reshape(len(keys), *shape)


class PerSampleNoise:
    """Noise whose row i depends only on (seed, indices[i]) and how many draws came before, drawn on `device`."""

    def __init__(self, seed: int, indices, device="cpu"):
        self.device = torch.device(device)
        self.keys = torch.tensor([mix_seed(int(seed), int(i)) for i in indices], dtype=torch.int64,
                                 device=self.device)
        self.draws = 0

    def __call__(self, shape, dtype=torch.float32) -> torch.Tensor:
        """[N x *shape] standard normal, N = len(indices)."""
        z = counter_normal(self.keys, self.draws, tuple(shape), dtype)
        self.draws += 1
        return z


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
