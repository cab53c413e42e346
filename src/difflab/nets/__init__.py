"""Denoiser networks: net(x, t, y=None) -> tensor shaped like x; no diffusion maths inside."""

from difflab.nets.diffusers_unet import DiffusersUNet
from difflab.nets.dit import DiT
from difflab.nets.unet import UNet

__all__ = ["DiffusersUNet", "DiT", "UNet"]
