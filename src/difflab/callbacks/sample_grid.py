"""Sample grids from the EMA weights every N training steps."""

from pathlib import Path

from lightning.pytorch.callbacks import Callback

from difflab.callbacks.ema import ema_module
from difflab.callbacks.images import log_image, save_grid


class SampleGrid(Callback):
    """Every `every_n_steps`, draw `num_samples` with a fixed seed (the same noise each time, so grids are
    comparable across steps) and write `dirpath/step_XXXXXXX.png`; also logged as `samples` to image loggers."""

    def __init__(self, dirpath, every_n_steps: int = 500, num_samples: int = 64, seed: int = 0, temperature=1.0):
        self.dirpath = Path(dirpath)
        self.every_n_steps, self.num_samples = every_n_steps, num_samples
        self.seed, self.temperature = seed, temperature

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.every_n_steps and step % self.every_n_steps == 0 and trainer.is_global_zero:
            self.write(trainer, pl_module, step)

    def write(self, trainer, pl_module, step: int):
        x = ema_module(trainer, pl_module).sample(self.num_samples, seed=self.seed, temperature=self.temperature)
        grid = save_grid(x, self.dirpath / f"step_{step:07d}.png")
        log_image(trainer, "samples", grid, step)
