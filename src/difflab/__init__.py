"""difflab: denoising diffusion experiments on PyTorch Lightning and Hydra."""

from difflab.module import DiffusionModule

__all__ = ["DiffusionModule"]
