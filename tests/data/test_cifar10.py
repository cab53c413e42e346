"""CIFAR-10 from tiny python batches these tests pickle themselves (their md5 sums cannot match torchvision's)."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from difflab.data import ImageDataModule
from difflab.data.torchvision_sets import CIFAR10
from difflab.errors import ConfigError


def write_batches(root: Path, per_batch: int = 2, n_test: int = 3) -> None:
    """CIFAR's layout: dicts with 'data' [n x 3072] uint8 (R plane, G plane, B plane, row-major) and 'labels'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        n = n_test if name == "test_batch" else per_batch
        images = np.zeros((n, 3, 32, 32), dtype=np.uint8)
        images[:, 0] = 255  # pure red: only the first plane lit
        with open(folder / name, "wb") as f:
            pickle.dump({"data": images.reshape(n, 3072), "labels": [(k + i) % 10 for i in range(n)]}, f)


def datamodule(root, **overrides):
    kwargs = dict(source=CIFAR10, root=str(root), image_size=32, channels=3, num_classes=10, batch_size=2,
                  val_fraction=0.2)
    dm = ImageDataModule(**{**kwargs, **overrides})
    dm.prepare_data()
    dm.setup()
    return dm


def test_reads_batches_in_channel_order(tmp_path):
    write_batches(tmp_path)
    dm = datamodule(tmp_path)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (8, 2, 3)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert (x[:, 0] == 1).all() and (x[:, 1:] == -1).all()
    assert [dm.test_set[i][1].item() for i in range(3)] == [5, 6, 7]


def test_grayscale_is_luma(tmp_path):
    write_batches(tmp_path)
    x, _ = datamodule(tmp_path, channels=1, image_size=16).test_set[0]
    assert x.shape == (1, 16, 16) and torch.allclose(x, torch.full_like(x, 0.299 * 1 + 0.701 * -1), atol=1e-5)


def test_missing_without_download(tmp_path):
    with pytest.raises(ConfigError, match="data.root") as error:
        datamodule(tmp_path)
    assert "cifar-10-batches-py" in str(error.value) and "data.download=true" in str(error.value)


def test_damaged_batch(tmp_path):
    write_batches(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match=r"data_batch_3 \(under data.root\) is not a CIFAR-10 python batch"):
        datamodule(tmp_path)
