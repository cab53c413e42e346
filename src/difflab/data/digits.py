"""scikit-learn's bundled 8x8 handwritten digits: 1797 images, 10 classes, nothing to download."""

import torch
from sklearn.datasets import load_digits

from difflab.data.images import TensorImages
from difflab.data.sampler import split_indices
from difflab.errors import ConfigError

TEST_SEED = 0  # the test set never moves with data.seed, so test numbers stay comparable across runs


class Digits:
    """Pixels 0..16 as [1 x 8 x 8]; a fixed `test_fraction` of the 1797 images is held out for testing."""

    num_classes = 10

    def __init__(self, *, root: str | None = None, download: bool = False, test_fraction: float = 0.2) -> None:
        # root and download are accepted for the common source signature; the data ship with scikit-learn
        if not 0 <= test_fraction < 1:
            raise ConfigError(f"data.source.test_fraction={test_fraction} is outside [0, 1); give e.g. 0.2")
        self.test_fraction = test_fraction

    def fetch(self) -> None:
        """Nothing to fetch: the images are bundled with scikit-learn."""

    def load(self) -> tuple[TensorImages, TensorImages]:
        bunch = load_digits()
        pixels = torch.from_numpy(bunch.images).to(torch.uint8)[:, None]
        labels = torch.from_numpy(bunch.target)
        train, test = split_indices(len(pixels), self.test_fraction, TEST_SEED)
        return (TensorImages(pixels[train], labels[train], max_value=16),
                TensorImages(pixels[test], labels[test], max_value=16))
