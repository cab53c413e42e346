"""The LightningDataModule: one image source, split into train/val/test, fitted to the model's shape, batched."""

from pathlib import Path
from typing import Callable, Protocol

import lightning as L
from torch.utils.data import DataLoader, Dataset, Subset

from difflab.data.images import Shaped
from difflab.data.resumable import ResumableLoader
from difflab.data.sampler import EpochShuffleSampler, split_indices
from difflab.errors import ConfigError


class Source(Protocol):
    """Where images come from; built by the datamodule as `source(root=..., download=...)`, which checks
    the files are there. Images come out [C x h x w] in [-1, 1], C in {1, 3}, at the source's own size."""

    num_classes: int

    def fetch(self) -> None: ...  # download if data.download=true and the files are missing (rank 0 only)

    def load(self) -> tuple[Dataset, Dataset]: ...  # (train, test)


class ImageDataModule(L.LightningDataModule):
    """Batches (x [N x C x H x W] float32 in [-1, 1], y [N] int64) with (C, H, W) = image_shape.

    `num_classes` null means labels are not used (unconditional models); an int must match the source.
    Outside a Trainer, call prepare_data() then setup() before asking for dataloaders.
    """

    def __init__(
        self,
        *,
        source: Callable[..., Source],
        image_size: int,
        channels: int,
        num_classes: int | None,
        batch_size: int,
        val_fraction: float = 0.1,
        num_workers: int = 0,
        seed: int = 0,
        root: str | None = None,
        download: bool = False,
        name: str | None = None,
        classes: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.name = name  # the data config's name (digits, fashion_mnist, ...): picks e.g. the FID-domain classifier
        check(isinstance(image_size, int) and image_size >= 1, f"data.image_size={image_size} must be an integer >= 1")
        check(channels in (1, 3), f"data.channels={channels} must be 1 (grayscale) or 3 (RGB)")
        check(isinstance(batch_size, int) and batch_size >= 1, f"data.batch_size={batch_size} must be an integer >= 1")
        check(0 <= val_fraction < 1, f"data.val_fraction={val_fraction} must lie in [0, 1), e.g. 0.1")
        check(isinstance(num_workers, int) and num_workers >= 0,
              f"data.num_workers={num_workers} must be an integer >= 0")
        check(isinstance(seed, int), f"data.seed={seed} must be an integer")
        if root is not None and not download:
            path = Path(root).expanduser()
            check(path.exists(), f"data.root={root} does not exist; give an existing folder holding the dataset's "
                                 f"files or set data.download=true")
            check(path.is_dir(), f"data.root={root} is a file; give the folder holding the dataset's files")
        self.source = source(root=root, download=download)
        found = self.source.num_classes
        check(num_classes is None or num_classes == found,
              f"data.num_classes={num_classes} but the data have {found} classes; set data.num_classes={found} "
              f"or null (labels unused)")
        check(classes is None or (len(classes) > 0 and all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c < found for c in classes)),
              f"data.classes={classes} is invalid; allowed: null (all) or a non-empty list of labels from 0 to "
              f"{found - 1}")
        self.classes = None if classes is None else sorted(set(classes))
        self.image_shape = (channels, image_size, image_size)
        self.num_classes = num_classes
        self.batch_size, self.val_fraction, self.num_workers, self.seed = batch_size, val_fraction, num_workers, seed
        self.train_set = self.val_set = self.test_set = None

    def prepare_data(self) -> None:
        self.source.fetch()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train, test = (keep_classes(d, self.classes) for d in self.source.load())
        keep, held = split_indices(len(train), self.val_fraction, self.seed)
        check(len(keep) >= self.batch_size,
              f"data.batch_size={self.batch_size} exceeds the {len(keep)} training images left after "
              f"data.val_fraction={self.val_fraction}; lower data.batch_size")
        channels, size, _ = self.image_shape
        self.train_set, self.val_set, self.test_set = (
            Shaped(d, channels, size) for d in (Subset(train, keep), Subset(train, held), test))

    def train_dataloader(self) -> DataLoader:
        if self.trainer is not None and self.trainer.overfit_batches:
            # Overfitting means the same batches every epoch: keep the order fixed.
            return self._loader(self.train_set, shuffle=False, drop_last=True)
        sampler = EpochShuffleSampler(len(self.train_set), self.seed)
        if self.trainer is None:
            return self._loader(self.train_set, sampler=sampler, drop_last=True)
        trainer = self.trainer
        return self._loader(self.train_set, sampler=sampler, drop_last=True, loader=ResumableLoader,
                            trained=lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)

    def _loader(self, dataset: Dataset, loader: type[DataLoader] = DataLoader, **kwargs) -> DataLoader:
        return loader(dataset, batch_size=self.batch_size, num_workers=self.num_workers,
                      persistent_workers=self.num_workers > 0, **kwargs)


def keep_classes(dataset: Dataset, classes: list[int] | None) -> Dataset:
    """The items of `dataset` whose label is in `classes` (all when None); one-class training uses this."""
    if classes is None:
        return dataset
    labels = getattr(dataset, "labels", None)
    labels = [int(y) for y in (labels if labels is not None else (dataset[i][1] for i in range(len(dataset))))]
    return Subset(dataset, [i for i, y in enumerate(labels) if y in classes])


def check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
