"""Saving image grids to disk and to whichever loggers can show images."""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] data scale -> [0, 1] for display."""
    return ((x.float() + 1) / 2).clamp(0, 1)


def save_grid(x: torch.Tensor, path, nrow: int | None = None, min_size: int = 48) -> torch.Tensor:
    """Write x [N x C x H x W] in [-1, 1] as one PNG grid; returns the grid [C x H' x W'] in [0, 1].

    Images smaller than `min_size` pixels are enlarged by an integer factor (nearest neighbour, so no pixel is
    invented): an 8x8 digit is unreadable at its true size on a screen.
    """
    nrow = nrow or max(1, int(round(x.shape[0] ** 0.5)))
    scale = max(1, math.ceil(min_size / x.shape[-1]))
    x = to_unit(x.cpu())
    if scale > 1:
        x = F.interpolate(x, scale_factor=scale, mode="nearest")
    grid = make_grid(x, nrow=nrow, padding=2, pad_value=1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return grid


def log_image(trainer, key: str, grid: torch.Tensor, step: int) -> None:
    """Send a [C x H x W] grid in [0, 1] to every logger that takes images (W&B, TensorBoard)."""
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):  # WandbLogger
            logger.log_image(key=key, images=[grid], step=step)
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard SummaryWriter
            logger.experiment.add_image(key, grid, global_step=step)
