"""Sample grids from the EMA weights every N training steps."""

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from difflab.callbacks.ema import ema_module
from difflab.callbacks.images import log_image, save_grid
from difflab.callbacks.steps import ends_optimizer_step


class SampleGrid(Callback):
    """Every `every_n_steps`, draw `num_samples` with a fixed seed (the same noise each time, so grids are
    comparable across steps) and write `dirpath/step_XXXXXXX.png`; also logged as `samples` to image loggers."""

    def __init__(self, dirpath, every_n_steps: int = 500, num_samples: int = 64, seed: int = 0, temperature=1.0):
        self.dirpath = Path(dirpath)
        self.every_n_steps, self.num_samples = every_n_steps, num_samples
        self.seed, self.temperature = seed, temperature

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.every_n_steps and step % self.every_n_steps == 0 and ends_optimizer_step(trainer) \
                and trainer.is_global_zero:
            self.write(trainer, pl_module, step)

    def write(self, trainer, pl_module, step: int):
        grid = preview_grid(ema_module(trainer, pl_module), self.num_samples, self.dirpath / f"step_{step:07d}.png",
                            seed=self.seed, temperature=self.temperature)
        log_image(trainer, "samples", grid, step)


def preview_grid(module, num_samples: int, path, seed: int = 0, temperature: float = 1.0, progress: bool = False):
    """Write a grid of samples; a class-conditional model draws column c from class c (unguided), so the grid
    shows whether it has learnt its classes. Returns the grid [C x H x W] in [0, 1]."""
    classes = module.num_classes
    labels = None if classes is None else torch.arange(num_samples) % classes
    x = module.sample(num_samples, seed=seed, temperature=temperature, y=labels, progress=progress)
    return save_grid(x, path, nrow=classes)
