"""Denoising trajectories: x_t and the predicted x0 along the reverse process, every N training steps."""

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from difflab.callbacks.ema import ema_module
from difflab.callbacks.images import log_image, save_grid
from difflab.callbacks.steps import ends_optimizer_step


def trajectory_strip(x_t: torch.Tensor, x0_hat: torch.Tensor) -> torch.Tensor:
    """Frames x_t, x0_hat [S x N x C x H x W] (S recorded steps, N samples) -> [2N*S x C x H x W] in grid order
    for S columns: row 2k is sample k's x_t along the steps, row 2k + 1 its predicted x0 beneath."""
    return torch.stack([x_t, x0_hat], dim=2).permute(1, 2, 0, 3, 4, 5).flatten(0, 2)


class Trajectory(Callback):
    """Every `every_n_steps`, sample `num_samples` images from the EMA weights with a fixed seed and record x_t and
    x0_hat at `num_frames` evenly spaced steps of the sampler's reverse process (first and last included).

    The strip (rows: x_t and x0_hat of each sample, columns: steps from noise to image) is written to
    `dirpath/step_XXXXXXX.png` and logged as `trajectory` to image loggers (W&B, TensorBoard).
    """

    def __init__(self, dirpath, every_n_steps: int = 400, num_samples: int = 4, num_frames: int = 10, seed: int = 0):
        self.dirpath = Path(dirpath)
        self.every_n_steps, self.num_samples, self.num_frames, self.seed = every_n_steps, num_samples, num_frames, seed

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.every_n_steps and step % self.every_n_steps == 0 and ends_optimizer_step(trainer) \
                and trainer.is_global_zero:
            self.write(trainer, pl_module, step)

    def write(self, trainer, pl_module, step: int) -> torch.Tensor:
        module = ema_module(trainer, pl_module)
        steps = module.sampler.nfe(module.timesteps)
        keep = set(torch.linspace(0, steps - 1, min(self.num_frames, steps)).round().long().tolist())
        frames = []

        def record(i, t, x_t, x0_hat):
            if i in keep:
                frames.append((x_t.float().cpu(), x0_hat.float().cpu()))

        # one batch, so that the callback sees every sample at each step
        module.sample(self.num_samples, seed=self.seed, callback=record, batch_size=self.num_samples)
        x_t, x0_hat = (torch.stack(f) for f in zip(*frames))
        grid = save_grid(trajectory_strip(x_t, x0_hat), self.dirpath / f"step_{step:07d}.png", nrow=len(frames))
        log_image(trainer, "trajectory", grid, step)
        return grid
