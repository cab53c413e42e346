"""One step of the reverse process from the denoiser's prediction, shared by every sampler and application.

Between timesteps t > s with abar the cumulative alphas, DDIM's step (Song et al. 2021, arXiv:2010.02502, eq. 12)

    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - c_t^2) eps_hat + tau * c_t' z

c_t = eta sqrt((1 - abar_s)/(1 - abar_t)) sqrt(1 - abar_t/abar_s) (eq. 16). eta = 1 is DDPM's ancestral step with
the posterior variance (Ho et al. 2020; respaced as in Nichol & Dhariwal 2021), eta = 0 is deterministic DDIM.
c_t' = c_t, or sqrt(1 - abar_t/abar_s) for DDPM's "large" variance choice (sigma_t^2 = beta_t). tau is the
temperature.
"""

from typing import Callable

import torch

from difflab.diffusion.parameterization import eps_from_x0
from difflab.diffusion.schedules import alpha_sigma_at, alpha_sigma_of


def predict(denoiser: Callable, x: torch.Tensor, t: int, abar: torch.Tensor, clip_x0: bool):
    """The denoiser's (x0_hat, eps_hat) at integer t, x0_hat clamped to [-1, 1] (and eps_hat re-derived) if asked."""
    x0, eps = denoiser(x, t)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps = eps_from_x0(x, x0, *alpha_sigma_at(abar, t))
    return x0, eps


def ddim_coefficients(abar_t: float, abar_s: float, eta: float, large_variance: bool = False):
    """(coefficient of x0_hat, of eps_hat, std of the injected noise) of one step t -> s.

    A step to a noisier level (abar_s < abar_t, as DDIM inversion takes) is deterministic: eta must be 0 there."""
    if abar_s < abar_t and (eta != 0 or large_variance):
        raise ValueError(f"a step to a noisier level (abar {abar_t:.4g} -> {abar_s:.4g}) takes eta = 0 only")
    c = 0.0 if abar_s < abar_t else eta * ((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s)) ** 0.5
    noise_std = (1 - abar_t / abar_s) ** 0.5 if large_variance else c
    return alpha_sigma_of(abar_s)[0], max(1 - abar_s - c**2, 0.0) ** 0.5, noise_std


def ddim_step(x0, eps, abar_t: float, abar_s: float, eta: float, noise: Callable, temperature: float = 1.0,
              large_variance: bool = False) -> torch.Tensor:
    """One step t -> s from the denoiser's (x0_hat, eps_hat) at t."""
    a, b, c = ddim_coefficients(abar_t, abar_s, eta, large_variance)
    x = a * x0 + b * eps
    if c > 0:
        x = x + (temperature * c) * noise(x.shape[1:], x.dtype)
    return x


def ode_step(x: torch.Tensor, x0: torch.Tensor, abar: torch.Tensor, t: int, s: int) -> torch.Tensor:
    """DDIM's deterministic step t -> s from x_t and an estimate of x0 (eps follows from the two); abar [T]."""
    eps = eps_from_x0(x, x0, *alpha_sigma_at(abar, t))
    return ddim_step(x0, eps, float(abar[t]), float(abar[s]), eta=0.0, noise=None)
