"""Image data: sources (digits, fashion_mnist, mnist, cifar10, folder) behind one LightningDataModule."""

from difflab.data.datamodule import ImageDataModule
from difflab.data.sampler import EpochShuffleSampler

__all__ = ["ImageDataModule", "EpochShuffleSampler"]
