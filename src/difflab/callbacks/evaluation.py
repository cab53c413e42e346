"""FID / KID (and optionally bits/dim) of the EMA model every N epochs during training, DDP-safe."""

from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from difflab.callbacks.ema import ema_module
from difflab.metrics.evaluator import build_evaluator, real_images, shard


class Evaluation(Callback):
    """Every `every_n_epochs`, each rank draws its share of `num_samples` from the EMA weights (sample i from
    noise seeded by (seed, i)) and feeds the metrics; torchmetrics syncs them; every logger gets `eval/<metric>`.
    Real-image statistics are computed at the first evaluation and kept (reset_real_features=False).
    `metrics` is the config's `metrics` node; it is instantiated at setup, so a bad choice stops the run early.
    """

    def __init__(self, metrics, every_n_epochs: int = 40, num_samples: int = 512, num_real: int | None = None,
                 split: str = "test", sampler=None, seed: int = 0, batch_size: int = 256):
        self.metrics_cfg = OmegaConf.create(metrics) if not OmegaConf.is_config(metrics) else metrics
        self.every_n_epochs, self.num_samples, self.num_real = every_n_epochs, num_samples, num_real
        self.split, self.sampler_cfg, self.seed, self.batch_size = split, sampler, seed, batch_size
        self.evaluator = None

    def setup(self, trainer, pl_module, stage):
        if stage != "fit" or not self.every_n_epochs or self.evaluator is not None:
            return
        datamodule = trainer.datamodule
        datamodule.setup("fit")
        self.real_set = datamodule.test_set if self.split == "test" else datamodule.val_set
        num_real = min(self.num_real or len(self.real_set), len(self.real_set))
        self.evaluator = build_evaluator(self.metrics_cfg, self.num_samples, num_real, seed=self.seed)
        self.sampler = instantiate(self.sampler_cfg) if self.sampler_cfg else None

    def on_train_epoch_end(self, trainer, pl_module):
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer, pl_module) -> dict[str, float]:
        ev = self.evaluator.to(pl_module.device)
        rank, world = trainer.global_rank, trainer.world_size
        if not ev.has_real:
            for x in real_images(self.real_set, shard(ev.num_real, rank, world), self.batch_size):
                ev.update_real(x.to(pl_module.device))
        ev.update_fake(ema_module(trainer, pl_module), shard(ev.num_samples, rank, world), self.sampler,
                       batch_size=self.batch_size)
        results = ev.compute()  # collective: every rank gets here
        pl_module.log_dict({f"eval/{k}": v for k, v in results.items()}, sync_dist=False)
        return results
