"""The forward (noising) process q: the one place x_t = alpha x0 + sigma eps and its jumps are written."""

import torch

from difflab.diffusion.schedules import karras_sigma


def diffuse(x0: torch.Tensor, eps: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """A draw of q(x_t | x0) = N(alpha x0, sigma^2 I) from standard normal eps (Ho et al. 2020, eq. 4)."""
    return alpha * x0 + sigma * eps


def renoise(x_t: torch.Tensor, z: torch.Tensor, abar_t: float, abar_s: float) -> torch.Tensor:
    """A draw of q(x_s | x_t) for a noisier s > t: N(sqrt(abar_s/abar_t) x_t, (1 - abar_s/abar_t) I).

    RePaint's "jump back" (Lugmayr et al. 2022, eq. 11 generalised to several steps)."""
    ratio = abar_s / abar_t
    return ratio**0.5 * x_t + (1 - ratio) ** 0.5 * z


def timestep_for_noise(alphas_cumprod: torch.Tensor, sigma: float) -> int:
    """The timestep whose noise-to-signal ratio sigma_t / alpha_t is closest to `sigma`.

    An image y = x0 + sigma n, scaled by alpha_t, is distributed like x_t at that timestep (Meng et al. 2022)."""
    return int((karras_sigma(alphas_cumprod) - sigma).abs().argmin())
