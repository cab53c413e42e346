"""Samplers: functions over a denoiser D(x_t, t) -> (x0_hat, eps_hat)."""

from difflab.sampling.ancestral import DDIM, DDPM, sample_reverse
from difflab.sampling.dpm_solver import DPMSolverPP
from difflab.sampling.generate import generate
from difflab.sampling.grids import respaced_timesteps
from difflab.sampling.heun import Heun
from difflab.sampling.inversion import ddim_decode, ddim_invert, exact_invert
from difflab.sampling.noise import make_noise

__all__ = ["DDIM", "DDPM", "DPMSolverPP", "Heun", "ddim_decode", "ddim_invert", "exact_invert", "generate",
           "make_noise", "respaced_timesteps", "sample_reverse"]
