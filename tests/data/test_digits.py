"""Digits: shapes, range, labels and deterministic splits of scikit-learn's 8x8 digits."""

import torch

from difflab.data import ImageDataModule
from difflab.data.digits import Digits


def digits(**overrides):
    kwargs = dict(source=Digits, image_size=8, channels=1, num_classes=10, batch_size=64, val_fraction=0.1, seed=0)
    dm = ImageDataModule(**{**kwargs, **overrides})
    dm.prepare_data()
    dm.setup()
    return dm


def everything(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def test_shapes_range_and_labels():
    dm = digits()
    assert dm.image_shape == (1, 8, 8) and dm.num_classes == 10
    x, y = everything(dm.train_dataloader())
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.shape == (len(dm.train_set) // 64 * 64, 1, 8, 8)
    assert x.min() == -1 and x.max() == 1  # pixel 0 -> -1, pixel 16 -> 1
    assert set(y.tolist()) == set(range(10))


def test_split_sizes_add_up():
    dm = digits()
    sizes = len(dm.train_set), len(dm.val_set), len(dm.test_set)
    assert sum(sizes) == 1797 and sizes[2] == round(1797 * 0.2) and sizes[1] == round((sizes[0] + sizes[1]) * 0.1)
    assert sum(len(x) for x, _ in dm.test_dataloader()) == sizes[2]  # evaluation keeps every image
    assert sum(len(x) for x, _ in dm.val_dataloader()) == sizes[1]


def test_split_is_fixed_by_seed_and_test_set_by_nothing():
    a, b, c = digits(seed=0), digits(seed=0), digits(seed=1)
    assert a.val_set.dataset.indices == b.val_set.dataset.indices != c.val_set.dataset.indices
    assert torch.equal(everything(a.test_dataloader())[0], everything(c.test_dataloader())[0])


def test_epoch_orders_repeat_by_seed_and_differ_between_epochs():
    def epoch(dm, e):
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(e)
        return everything(loader)[1]

    a, b = digits(seed=3), digits(seed=3)
    assert torch.equal(epoch(a, 2), epoch(b, 2))
    assert not torch.equal(epoch(a, 2), epoch(a, 3))


def test_resized_to_rgb():
    dm = digits(image_size=16, channels=3)
    x, _ = next(iter(dm.train_dataloader()))
    assert dm.image_shape == (3, 16, 16) and x.shape == (64, 3, 16, 16)
    assert x.min() >= -1 and x.max() <= 1 and torch.equal(x[:, 0], x[:, 2])
