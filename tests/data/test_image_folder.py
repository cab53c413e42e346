"""A folder of PNG/JPEG files of mixed sizes and modes, fitted to one square shape."""

import functools

import numpy as np
import pytest
import torch
from PIL import Image

from difflab.data import ImageDataModule
from difflab.data.folder import Folder
from difflab.errors import ConfigError


def save(path, array, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def datamodule(root, **overrides):
    kwargs = dict(source=functools.partial(Folder, test_fraction=0.0), root=None if root is None else str(root),
                  image_size=16, channels=3, num_classes=None, batch_size=2, val_fraction=0.0)
    dm = ImageDataModule(**{**kwargs, **overrides})
    dm.prepare_data()
    dm.setup()
    return dm


@pytest.fixture
def classes(tmp_path):
    """cats/ and dogs/, with RGB, gray, RGBA and JPEG files of different sizes, one nested a level deeper."""
    wide = np.zeros((20, 40, 3), dtype=np.uint8)
    wide[:, 8:32] = 255  # white where the centre crop lands, black at the sides it cuts off
    save(tmp_path / "cats" / "wide.png", wide, "RGB")
    save(tmp_path / "cats" / "tall.png", np.full((33, 17), 90, dtype=np.uint8), "L")
    save(tmp_path / "dogs" / "a.jpg", np.full((24, 24, 3), 200, dtype=np.uint8), "RGB")
    save(tmp_path / "dogs" / "deep" / "b.PNG", np.full((8, 12, 4), 30, dtype=np.uint8), "RGBA")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    (tmp_path / "dogs" / "._a.png").write_bytes(b"macOS metadata, not a PNG")
    return tmp_path


def test_class_subfolders_resized_and_cropped(classes):
    dm = datamodule(classes, num_classes=2)
    assert dm.num_classes == 2 and dm.image_shape == (3, 16, 16)
    items = [dm.train_set[i] for i in range(len(dm.train_set))]
    assert len(items) == 4 and all(x.shape == (3, 16, 16) and x.dtype == torch.float32 for x, _ in items)
    assert all(-1 <= x.min() and x.max() <= 1 for x, _ in items)
    assert sorted(y.item() for _, y in items) == [0, 0, 1, 1]
    wide = next(x for x, _ in items if x.mean() > 0.99)  # the crop kept only the white centre
    assert torch.allclose(wide, torch.ones_like(wide), atol=1e-5)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 16, 16) and y.dtype == torch.int64


def test_grayscale(classes):
    dm = datamodule(classes, channels=1, image_size=8)
    assert dm.num_classes is None
    assert all(dm.train_set[i][0].shape == (1, 8, 8) for i in range(4))


def test_flat_folder_has_one_class(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png", np.full((10, 10, 3), 40 * i, dtype=np.uint8), "RGB")
    dm = datamodule(tmp_path, num_classes=1)
    assert [dm.train_set[i][1].item() for i in range(3)] == [0, 0, 0]


def test_test_fraction_holds_out_fixed_images(classes):
    source = functools.partial(Folder, test_fraction=0.25)
    a, b = datamodule(classes, source=source, seed=0), datamodule(classes, source=source, seed=1)
    assert len(a.test_set) == 1 and a.test_set.dataset.paths == b.test_set.dataset.paths


def test_no_images(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing to see")
    with pytest.raises(ConfigError, match="data.root=.* holds no images"):
        datamodule(tmp_path)


def test_class_count_must_match(classes):
    with pytest.raises(ConfigError, match="data.num_classes=10 but the data have 2 classes"):
        datamodule(classes, num_classes=10)


def test_root_needed(tmp_path):
    with pytest.raises(ConfigError, match="data.root=null"):
        datamodule(None)
