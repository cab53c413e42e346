"""A shuffle whose order depends only on (seed, epoch), so a resumed run sees the same batches."""

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """A permutation of range(n) drawn from seed * 1000003 + epoch; Lightning calls set_epoch each epoch."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (kept, held out) of range(n), round(n * fraction) held out, chosen by `seed` alone."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = round(n * fraction)
    return sorted(order[held:].tolist()), sorted(order[:held].tolist())
