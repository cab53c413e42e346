"""Fashion-MNIST and MNIST read from IDX files these tests write, plus the real Debian files when present."""

import functools
import gzip
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision

from difflab.data import ImageDataModule
from difflab.data.fashion_mnist import DEBIAN_DIR, FashionMNIST
from difflab.data.idx import read_idx
from difflab.data.torchvision_sets import MNIST
from difflab.errors import ConfigError

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: two zero bytes, a type byte, the number of dimensions, big-endian uint32 sizes, big-endian data."""
    kind = {np.dtype("uint8"): 0x08, np.dtype("int32"): 0x0C, np.dtype("float32"): 0x0D}[array.dtype]
    header = struct.pack(">BBBB", 0, 0, kind, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def write_set(folder: Path, suffix: str, n_train: int = 12, n_test: int = 4) -> dict[str, np.ndarray]:
    """Random 28x28 uint8 images spanning 0..255 and labels 0..9, written as the four IDX files."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0, 0, :2] = 0, 255
        arrays[f"{split}-images-idx3-ubyte"] = images
        arrays[f"{split}-labels-idx1-ubyte"] = (np.arange(n) % 10).astype(np.uint8)
    for stem, array in arrays.items():
        write_idx(folder / f"{stem}{suffix}", array)
    return arrays


def datamodule(source, root, **overrides):
    kwargs = dict(source=source, root=root, image_size=28, channels=1, num_classes=10, batch_size=2, val_fraction=0.25)
    dm = ImageDataModule(**{**kwargs, **overrides})
    dm.prepare_data()
    dm.setup()
    return dm


def test_read_idx_round_trip(tmp_path):
    for dtype in ("uint8", "int32", "float32"):
        array = np.arange(24, dtype=dtype).reshape(2, 3, 4) - (3 if dtype != "uint8" else 0)
        write_idx(tmp_path / f"a-{dtype}.gz", array)
        assert np.array_equal(read_idx(tmp_path / f"a-{dtype}.gz").numpy(), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ConfigError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


@pytest.mark.parametrize("layout", ["flat/{}.gz", "flat/{}", "FashionMNIST/raw/{}"])
def test_fashion_mnist_from_root(tmp_path, layout):
    folder = tmp_path / Path(layout).parent
    arrays = write_set(folder, Path(layout).suffix)
    dm = datamodule(FashionMNIST, str(tmp_path / "flat") if "flat" in layout else str(tmp_path))
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (9, 3, 4)
    x, y = zip(*(dm.test_set[i] for i in range(4)))
    expected = torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float()[:, None] / 255 * 2 - 1
    assert torch.allclose(torch.stack(x), expected, atol=1e-6)
    assert torch.stack(y).tolist() == [0, 1, 2, 3] and torch.stack(y).dtype == torch.int64
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1


def test_fashion_mnist_resized_to_32(tmp_path):
    write_set(tmp_path, ".gz")
    x, _ = next(iter(datamodule(FashionMNIST, str(tmp_path), image_size=32).train_dataloader()))
    assert x.shape == (2, 1, 32, 32) and -1 <= x.min() and x.max() <= 1


@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="Debian's fashion-mnist package is not installed")
def test_fashion_mnist_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    train, test = FashionMNIST(root=None).load()
    assert (len(train), len(test)) == (60000, 10000)
    assert train[0][0].shape == (1, 28, 28)


def test_fashion_mnist_nowhere_names_all_three_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/difflab either
    source = functools.partial(FashionMNIST, system_dir=str(tmp_path / "no-package"))
    with pytest.raises(ConfigError, match="data.root") as error:
        datamodule(source, None)
    assert "data.download=true" in str(error.value) and "Debian" in str(error.value)
    assert "\n" not in str(error.value)


def test_fashion_mnist_root_without_files(tmp_path):
    write_set(tmp_path, ".gz")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ConfigError, match="data.root"):
        datamodule(FashionMNIST, str(tmp_path))


def test_mnist_through_torchvision(tmp_path):
    arrays = write_set(tmp_path / "MNIST" / "raw", "")  # torchvision reads the uncompressed files
    dm = datamodule(MNIST, str(tmp_path), image_size=32, channels=3)
    assert dm.image_shape == (3, 32, 32) and len(dm.test_set) == 4
    x, y = dm.test_set[1]
    assert x.shape == (3, 32, 32) and y.item() == arrays["t10k-labels-idx1-ubyte"][1]
    plain = datamodule(MNIST, str(tmp_path))
    expected = torch.from_numpy(arrays["t10k-images-idx3-ubyte"][1]).float() / 255 * 2 - 1
    assert torch.allclose(plain.test_set[1][0][0], expected, atol=1e-6)


def test_mnist_missing_without_download(tmp_path):
    with pytest.raises(ConfigError, match="data.root") as error:
        datamodule(MNIST, str(tmp_path))
    assert "data.download=true" in str(error.value) and "MNIST/raw" in str(error.value)


def test_mnist_unreadable_files(tmp_path):
    write_set(tmp_path / "MNIST" / "raw", "")
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x01\x03junk")
    with pytest.raises(ConfigError, match="data.root"):
        datamodule(MNIST, str(tmp_path))


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://..., got URLError")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(ConfigError, match="data.download=true: fetching mnist") as error:
        datamodule(MNIST, str(tmp_path / "new"), download=True)
    assert "\n" not in str(error.value)
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", lambda *a, **k: (_ for _ in ()).throw(URLError("no net")))
    with pytest.raises(ConfigError, match="data.download=true: fetching fashion_mnist"):
        datamodule(FashionMNIST, str(tmp_path / "new"), download=True)
