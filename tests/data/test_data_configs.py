"""conf/data/*.yaml compose and instantiate as a user would: `data=<name> data.root=...`."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from difflab.data import ImageDataModule
from difflab.errors import ConfigError

CONF = Path(__file__).parents[2] / "conf" / "data"
KEYS = {"_target_", "name", "source", "root", "download", "image_size", "channels", "num_classes", "batch_size",
        "val_fraction", "num_workers", "seed", "classes"}


def compose(name, **overrides):
    """The data group as Hydra places it (under `data:`), with command-line style overrides applied."""
    cfg = OmegaConf.create({"data": OmegaConf.load(CONF / f"{name}.yaml")})
    cfg.merge_with_dotlist([f"data.{k}={v}" for k, v in overrides.items()])
    return cfg.data


@pytest.mark.parametrize("name", ["digits", "fashion_mnist", "mnist", "cifar10", "folder"])
def test_every_config_has_the_same_keys(name):
    cfg = compose(name)
    assert set(cfg) == KEYS and cfg._target_ == "difflab.data.datamodule.ImageDataModule"
    assert cfg.source._partial_ is True


def test_digits_defaults():
    dm = instantiate(compose("digits"))
    assert isinstance(dm, ImageDataModule) and dm.image_shape == (1, 8, 8) and dm.num_classes == 10
    assert (dm.batch_size, dm.val_fraction, dm.num_workers) == (128, 0.1, 0)


def test_classes_keep_only_those_labels():
    dm = instantiate(compose("digits", classes="[3,7]"))
    dm.setup()
    for split in (dm.train_set, dm.val_set, dm.test_set):
        assert {int(split[i][1]) for i in range(len(split))} == {3, 7}
    everything = instantiate(compose("digits"))
    everything.setup()
    sevens = sum(int(everything.test_set[i][1]) == 7 for i in range(len(everything.test_set)))
    assert sum(int(dm.test_set[i][1]) == 7 for i in range(len(dm.test_set))) == sevens


@pytest.mark.parametrize("classes", ["[10]", "[]", "[-1]"])
def test_bad_classes(classes):
    with pytest.raises(InstantiationException, match=r"data.classes=.* is invalid; allowed: null \(all\) or a "
                                                     r"non-empty list of labels from 0 to 9"):
        instantiate(compose("digits", classes=classes))


def test_cifar10_from_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, f)
    dm = instantiate(compose("cifar10", root=tmp_path, batch_size=4, num_workers=0))
    dm.setup()
    assert dm.image_shape == (3, 32, 32) and next(iter(dm.train_dataloader()))[0].shape == (4, 3, 32, 32)


def test_folder_from_root(tmp_path):
    from PIL import Image

    for i in range(4):
        Image.new("RGB", (30 + i, 20), (50 * i, 0, 0)).save(tmp_path / f"{i}.png")
    dm = instantiate(compose("folder", root=tmp_path, image_size=12, batch_size=2, num_workers=0, val_fraction=0))
    dm.setup()
    assert next(iter(dm.train_dataloader()))[0].shape == (2, 3, 12, 12)


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10", "folder"])
def test_missing_root_surfaces_as_config_error(name):
    # Hydra wraps what a target raises; entry points report the ConfigError found as its cause
    with pytest.raises(InstantiationException) as error:
        instantiate(compose(name, root="/nope"))
    assert isinstance(error.value.__cause__, ConfigError) and "data.root=/nope" in str(error.value.__cause__)
