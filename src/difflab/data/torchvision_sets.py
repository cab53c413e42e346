"""MNIST and CIFAR-10 read from data.root; torchvision fetches them when data.download=true."""

import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torchvision

from difflab.data.idx import read_idx
from difflab.data.images import TensorImages
from difflab.errors import ConfigError

DEFAULT_ROOT = "~/.cache/difflab"  # where data.root=null looks, and where downloads go


def resolve_root(root: str | None) -> Path:
    return Path(root if root is not None else DEFAULT_ROOT).expanduser()


def first_line(error: Exception) -> str:
    """torchvision's messages run over several lines; ConfigError's are one."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def download(name: str, root: Path, fetch: Callable[[], object]) -> None:
    """Run a torchvision download, turning its failures into one line that says what to do instead."""
    try:
        fetch()
    except (RuntimeError, OSError) as e:
        raise ConfigError(f"data.download=true: fetching {name} into {root} failed ({first_line(e)}); "
                          f"check the network, or set data.root to a folder already holding the files") from e


class _LocalFiles:
    """A dataset that must find `files` in ROOT/`folder`, or be allowed to download them there."""

    name: str
    folder: str
    files: tuple[str, ...]
    num_classes = 10

    def __init__(self, *, root: str | None = None, download: bool = False) -> None:
        self.given, self.root, self.download = root, resolve_root(root), download
        if self.missing() and not download:
            raise ConfigError(self._missing_message())

    def missing(self) -> list[str]:
        return [f for f in self.files if not (self.root / self.folder / f).is_file()]

    def _missing_message(self) -> str:
        where = f"data.root={self.given}" if self.given is not None else f"data.root=null (meaning {self.root})"
        return (f"{self.name}: {self.folder}/{self.missing()[0]} is not under {where}; set data.root to the folder "
                f"holding {self.folder}/ ({', '.join(self.files)}), or set data.download=true")

    def fetch(self) -> None:
        if self.download and self.missing():
            download(self.name, self.root, self._download)

    def load(self) -> tuple[TensorImages, TensorImages]:
        if self.missing():  # download=true but prepare_data() was not run
            raise ConfigError(self._missing_message() + " and call prepare_data() before setup()")
        return self._read(train=True), self._read(train=False)


class MNIST(_LocalFiles):
    """torchvision's MNIST: ROOT/MNIST/raw/ holds the four uncompressed IDX files; [1 x 28 x 28]."""

    name, folder = "mnist", "MNIST/raw"
    files = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

    def _download(self) -> None:
        torchvision.datasets.MNIST(self.root, download=True)

    def _read(self, train: bool) -> TensorImages:
        try:
            dataset = torchvision.datasets.MNIST(self.root, train=train)
        except (RuntimeError, AssertionError, ValueError, TypeError) as e:
            for name in self.files:  # name the damaged file, where difflab's own IDX reader can tell which
                read_idx(self.root / self.folder / name)
            raise ConfigError(f"mnist: torchvision could not read {self.folder} under data.root={self.root} "
                              f"({first_line(e)}); replace them, or delete them and set data.download=true") from e
        return TensorImages(dataset.data[:, None], dataset.targets)


class CIFAR10(_LocalFiles):
    """CIFAR-10's python batches in ROOT/cifar-10-batches-py; [3 x 32 x 32].

    The batches are read here, not by torchvision, whose reader insists on the published md5 sums;
    torchvision only downloads (and checks those sums then).
    """

    name, folder = "cifar10", "cifar-10-batches-py"
    files = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")

    def _download(self) -> None:
        torchvision.datasets.CIFAR10(self.root, download=True)

    def _read(self, train: bool) -> TensorImages:
        pixels, labels = [], []
        for name in self.files[:5] if train else self.files[5:]:
            path = self.root / self.folder / name
            try:
                with open(path, "rb") as f:
                    batch = pickle.load(f, encoding="latin1")
                pixels.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.extend(batch["labels"])
            except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as e:
                raise ConfigError(f"cifar10: {path} (under data.root) is not a CIFAR-10 python batch ({e!r}); "
                                  f"replace it, or delete it and set data.download=true") from e
        return TensorImages(torch.from_numpy(np.concatenate(pixels)), torch.tensor(labels))
