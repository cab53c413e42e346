"""Samplers: functions over a denoiser D(x_t, t) -> (x0_hat, eps_hat)."""

from difflab.sampling.ancestral import sample_reverse
from difflab.sampling.generate import generate
from difflab.sampling.grids import respaced_timesteps
from difflab.sampling.inversion import ddim_decode, ddim_invert, exact_invert
from difflab.sampling.noise import make_noise
from difflab.sampling.samplers import DDIM, DDPM
from difflab.sampling.solvers import DPMSolverPP, DPMSolverPP2M, Heun

__all__ = ["DDIM", "DDPM", "DPMSolverPP", "DPMSolverPP2M", "Heun", "ddim_decode", "ddim_invert", "exact_invert",
           "generate", "make_noise", "respaced_timesteps", "sample_reverse"]
