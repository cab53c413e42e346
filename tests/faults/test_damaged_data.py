"""A damaged data file (an IDX .gz cut short, an image that is not one or is truncated): one line naming the file,
before training where the file's structure shows it."""

import gzip

import numpy as np
import pytest
from PIL import Image

from difflab.data.fashion_mnist import FashionMNIST
from difflab.data.torchvision_sets import MNIST
from difflab.errors import ConfigError
from tests.conftest import TINY, run_in_process
from tests.data.test_idx_datasets import datamodule as idx_datamodule
from tests.data.test_idx_datasets import write_set
from tests.data.test_image_folder import datamodule as folder_datamodule
from tests.data.test_image_folder import save


@pytest.mark.parametrize("damage", ["cut short", "garbled", "not gzip"])
def test_damaged_idx_gz_names_the_file(tmp_path, damage):
    write_set(tmp_path, ".gz")
    path = tmp_path / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    if damage == "cut short":
        data = data[: len(data) // 2]
    elif damage == "garbled":
        data = gzip.compress(b"")[:10] + bytes(len(data) - 10)  # a gzip header over zeros: not a deflate stream
    else:
        data = b"not a gzip file at all"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=f"{path} cannot be read") as error:
        idx_datamodule(FashionMNIST, str(tmp_path))
    assert len(str(error.value).splitlines()) == 1 and "replace it under data.root" in str(error.value)


def test_truncated_mnist_file_is_named(tmp_path):
    write_set(tmp_path / "MNIST" / "raw", "")
    path = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ConfigError, match=f"{path}: the header says"):
        idx_datamodule(MNIST, str(tmp_path))


def images(tmp_path, n=4):
    for i in range(n):
        save(tmp_path / f"{i}.png", np.full((8, 8, 3), 30 * i, dtype=np.uint8), "RGB")
    return tmp_path


@pytest.mark.parametrize("damage", ["cut short", "not an image", "empty"])
def test_damaged_png_is_found_before_training(tmp_path, damage):
    path = images(tmp_path) / "2.png"
    data = path.read_bytes()
    path.write_bytes({"cut short": data[: len(data) // 2], "not an image": b"<html>404</html>", "empty": b""}[damage])
    with pytest.raises(ConfigError, match=f"{path} is not a readable image"):
        folder_datamodule(tmp_path)


def test_truncated_jpeg_names_the_file_when_read(tmp_path):
    path = images(tmp_path) / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-500])  # its header is whole, its pixels are not
    dm = folder_datamodule(tmp_path)
    dataset = dm.train_dataloader().dataset
    with pytest.raises(ConfigError, match=f"{path} is not a readable image"):
        [dataset[i] for i in range(len(dataset))]


def test_damaged_image_from_the_command_line_is_one_line(tmp_path, no_fit):
    root = images(tmp_path / "data", n=8)
    (root / "5.png").write_bytes((root / "5.png").read_bytes()[:30])
    proc = run_in_process("train", *TINY, "data=folder", f"data.root={root}", "data.image_size=8", "data.batch_size=2",
                          "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {root / '5.png'} is not a readable image")


def test_image_that_breaks_in_a_data_loader_worker_is_one_line(tmp_path):
    root = images(tmp_path / "data", n=8)
    path = root / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-500])
    proc = run_in_process("train", *TINY, "data=folder", f"data.root={root}", "data.image_size=8", "data.batch_size=2",
                          "data.num_workers=1", "data.source.test_fraction=0", "data.val_fraction=0", "logger=none",
                          f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {path} is not a readable image")
