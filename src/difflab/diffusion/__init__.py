"""Diffusion maths: noise schedules, parameterisations, objectives and the denoiser adapter."""

from difflab.diffusion.denoiser import Denoiser
from difflab.diffusion.guidance import GuidedDenoiser
from difflab.diffusion.objectives import Epsilon, Score, V
from difflab.diffusion.schedules import CosineSchedule, LinearSchedule
from difflab.diffusion.weighting import MinSNR, Uniform

__all__ = [
    "CosineSchedule", "Denoiser", "Epsilon", "GuidedDenoiser", "LinearSchedule", "MinSNR", "Score", "Uniform", "V",
]
