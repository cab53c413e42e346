"""EpochShuffleSampler and split_indices: orders and splits that depend only on their seeds."""

import lightning as L
import pytest
import torch

from difflab.data import EpochShuffleSampler, ImageDataModule
from difflab.data.digits import Digits
from difflab.data.sampler import split_indices


def order(n, seed, epoch):
    sampler = EpochShuffleSampler(n, seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_order_is_a_permutation_fixed_by_seed_and_epoch():
    assert sorted(order(50, 3, 0)) == list(range(50))
    assert order(50, 3, 7) == order(50, 3, 7)
    assert order(50, 3, 0) != order(50, 3, 1)
    assert order(50, 3, 0) != order(50, 4, 0)
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(3 * 1000003 + 7)).tolist()
    assert order(50, 3, 7) == expected and len(EpochShuffleSampler(50, 3)) == 50


def test_split_indices_partition_by_seed():
    kept, held = split_indices(101, 0.2, seed=5)
    assert len(held) == 20 and sorted(kept + held) == list(range(101))
    assert (kept, held) == split_indices(101, 0.2, seed=5)
    assert held != split_indices(101, 0.2, seed=6)[1]
    assert split_indices(10, 0.0, seed=0) == (list(range(10)), [])


class Recorder(L.LightningModule):
    """Remembers the labels of every training batch, per epoch."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen = {}

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen.setdefault(self.current_epoch, []).append(y.clone())
        return (self.weight * x.mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.filterwarnings("ignore:You passed in a .val_dataloader")
def test_trainer_sets_the_epoch_on_the_sampler():
    dm = ImageDataModule(source=Digits, image_size=8, channels=1, num_classes=10, batch_size=256, seed=11)
    model = Recorder()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    labels = torch.stack([dm.train_set[i][1] for i in range(len(dm.train_set))])
    for epoch in (0, 1):
        expected = labels[order(len(dm.train_set), 11, epoch)]
        got = torch.cat(model.seen[epoch])
        assert torch.equal(got, expected[: len(got)])
        assert len(got) == len(dm.train_set) // 256 * 256  # drop_last
    assert not torch.equal(torch.cat(model.seen[0]), torch.cat(model.seen[1]))
