"""Every bad data.* value is refused at construction with one line naming the key and what is allowed."""

import pytest

from difflab.data import ImageDataModule
from difflab.data.digits import Digits
from difflab.data.torchvision_sets import CIFAR10, MNIST
from difflab.errors import ConfigError

GOOD = dict(source=Digits, image_size=8, channels=1, num_classes=10, batch_size=16, val_fraction=0.1)


@pytest.mark.parametrize("key, value, allowed", [
    ("image_size", 0, ">= 1"),
    ("channels", 2, "1 (grayscale) or 3 (RGB)"),
    ("batch_size", 0, ">= 1"),
    ("val_fraction", 1.0, "[0, 1)"),
    ("val_fraction", -0.1, "[0, 1)"),
    ("num_workers", -1, ">= 0"),
    ("num_classes", 7, "data have 10 classes"),
    ("root", "/nope", "does not exist"),
])
def test_bad_values(key, value, allowed):
    with pytest.raises(ConfigError, match=f"data.{key}={value}") as error:
        ImageDataModule(**{**GOOD, key: value})
    assert allowed in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("source", [Digits, MNIST, CIFAR10])
def test_missing_root_names_the_download_switch(source):
    with pytest.raises(ConfigError, match="data.root=/nope does not exist.*data.download=true"):
        ImageDataModule(**{**GOOD, "source": source, "root": "/nope"})


def test_root_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="data.root=.*is a file"):
        ImageDataModule(**{**GOOD, "root": str(tmp_path / "file")})


def test_test_fraction():
    with pytest.raises(ConfigError, match=r"data.source.test_fraction=1.5 is outside \[0, 1\)"):
        ImageDataModule(**{**GOOD, "source": lambda **kw: Digits(**kw, test_fraction=1.5)})


def test_batch_larger_than_training_set():
    dm = ImageDataModule(**{**GOOD, "batch_size": 5000})  # known only once the data are read
    with pytest.raises(ConfigError, match="data.batch_size=5000 exceeds the 1294 training images"):
        dm.setup()
