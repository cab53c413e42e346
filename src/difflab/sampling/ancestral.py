"""DDPM and DDIM as one reverse-process recursion over a denoiser D(x_t, t) -> (x0_hat, eps_hat).

Between consecutive timesteps t > s of a (possibly respaced) grid, with abar the cumulative alphas:

    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - c_t^2) eps_hat + tau * c_t' z

c_t = eta sqrt((1 - abar_s)/(1 - abar_t)) sqrt(1 - abar_t/abar_s) (Song et al. 2021, arXiv:2010.02502, eq. 16).
eta = 1 is DDPM's ancestral step with the posterior variance (Ho et al. 2020; respaced as in Nichol &
Dhariwal 2021), eta = 0 is deterministic DDIM. c_t' = c_t, or sqrt(1 - abar_t/abar_s) for DDPM's "large"
variance choice (sigma_t^2 = beta_t). The last step returns x0_hat. tau is the temperature.
"""

from typing import Callable

import torch
from tqdm.auto import tqdm

from difflab.diffusion.parameterization import eps_from_x0
from difflab.diffusion.schedules import alpha_sigma_at


def respaced_timesteps(timesteps: int, steps: int) -> torch.Tensor:
    """`steps` integer timesteps evenly spread from T-1 down to 0, [steps] int64, strictly decreasing."""
    return torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).round().long()


def ddim_coefficients(abar_t: float, abar_s: float, eta: float, large_variance: bool = False):
    """(coefficient of x0_hat, of eps_hat, std of the injected noise) of one step t -> s.

    A step to a noisier level (abar_s < abar_t, as DDIM inversion takes) is deterministic: eta must be 0 there."""
    if abar_s < abar_t:
        if eta != 0 or large_variance:
            raise ValueError(f"a step to a noisier level (abar {abar_t:.4g} -> {abar_s:.4g}) takes eta = 0 only")
        return abar_s**0.5, (1 - abar_s) ** 0.5, 0.0
    c = eta * ((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s)) ** 0.5
    noise_std = (1 - abar_t / abar_s) ** 0.5 if large_variance else c
    return abar_s**0.5, max(1 - abar_s - c**2, 0.0) ** 0.5, noise_std


@torch.no_grad()
def sample_reverse(
    denoiser: Callable,
    x: torch.Tensor,
    noise: Callable,
    timesteps: torch.Tensor,
    eta: float,
    temperature: float = 1.0,
    large_variance: bool = False,
    callback: Callable | None = None,
    progress: bool = False,
    clip_x0: bool = False,
    project: Callable | None = None,
) -> torch.Tensor:
    """Run the recursion from x = x_{timesteps[0]} [N x C x H x W]; returns x0 [N x C x H x W].

    noise(shape) gives [N x *shape] standard normal draws; callback(i, t, x_t, x0_hat) sees every step.
    project(t_next, x) -> x edits the state after every step, t_next = -1 for the returned x0: the hook through
    which conditioning (ILVR, inpainting) replaces what the observation fixes.
    clip_x0 clamps x0_hat to the data range [-1, 1] and re-derives eps_hat from it (Ho et al. 2020's sampler):
    at the noisiest steps x0_hat = (x_t - sigma eps_hat) / alpha divides the network's error by alpha ~ 0.
    """
    abar = denoiser.alphas_cumprod.double().cpu()
    ts = [int(t) for t in timesteps]
    for i, t in enumerate(tqdm(ts, desc="sampling", disable=not progress, leave=False)):
        x0, eps = predict(denoiser, x, t, abar, clip_x0)
        if callback is not None:
            callback(i, t, x, x0)
        if i == len(ts) - 1:
            return x0 if project is None else project(-1, x0)
        x = ddim_step(x0, eps, float(abar[t]), float(abar[ts[i + 1]]), eta, noise, temperature, large_variance)
        if project is not None:
            x = project(ts[i + 1], x)
    return x


def predict(denoiser: Callable, x: torch.Tensor, t: int, abar: torch.Tensor, clip_x0: bool):
    """The denoiser's (x0_hat, eps_hat) at integer t, x0_hat clamped to [-1, 1] (and eps_hat re-derived) if asked."""
    x0, eps = denoiser(x, t)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps = eps_from_x0(x, x0, *alpha_sigma_at(abar, t))
    return x0, eps


def ddim_step(x0, eps, abar_t: float, abar_s: float, eta: float, noise: Callable, temperature: float = 1.0,
              large_variance: bool = False) -> torch.Tensor:
    """One step t -> s of the recursion from the denoiser's (x0_hat, eps_hat) at t."""
    a, b, c = ddim_coefficients(abar_t, abar_s, eta, large_variance)
    x = a * x0 + b * eps
    if c > 0:
        x = x + (temperature * c) * noise(x.shape[1:], x.dtype)
    return x
