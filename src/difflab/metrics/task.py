"""The evaluation as a LightningModule, so that Lightning runs it on CPU, one GPU or DDP alike."""

import lightning as L
import torch
from torch.utils.data import DataLoader

from difflab.metrics.evaluator import Evaluator, real_images, shard
from difflab.sampling.noise import mix_seed


class EvaluationTask(L.LightningModule):
    """One test step per rank: feed this rank's share of real images (FID/KID statistics, bits/dim) and of the
    samples; at epoch end every rank computes (torchmetrics syncs) and `results` holds the numbers."""

    def __init__(self, module, evaluator: Evaluator, real_set, sampler=None, temperature=1.0, batch_size=256,
                 compile: str | None = None):
        super().__init__()
        self.module, self.evaluator, self.real_set = module, evaluator, real_set
        self.sampler, self.temperature, self.batch_size, self.compile = sampler, temperature, batch_size, compile
        self.results: dict[str, float] = {}

    def test_dataloader(self):
        return DataLoader([0], batch_size=1)  # one step per rank; the work is sharded by hand below

    def test_step(self, batch, batch_idx):
        rank, world = self.global_rank, self.trainer.world_size
        ev = self.evaluator
        if ev.sample_metrics:
            for x in real_images(self.real_set, shard(ev.num_real, rank, world), self.batch_size):
                ev.update_real(x.to(self.device))
        if ev.nll is not None:
            n = min(ev.nll_config.num_images or len(self.real_set), len(self.real_set))
            part = shard(n, rank, world)
            g = torch.Generator(device=self.device).manual_seed(mix_seed(ev.seed, part.start))
            for x in real_images(self.real_set, part, self.batch_size):
                ev.update_nll(self.module, x, g, progress=self.trainer.is_global_zero)
        ev.update_fake(self.module, shard(ev.num_samples, rank, world), self.sampler, self.temperature,
                       self.batch_size, progress=self.trainer.is_global_zero, compile=self.compile)

    def on_test_epoch_end(self):
        self.results = self.evaluator.compute()
