"""Conversions between the quantities a denoiser can predict, given x_t = alpha x0 + sigma eps.

The one place each formula is written. alpha and sigma broadcast against x. The v formulas hold for
variance-preserving processes (alpha^2 + sigma^2 = 1) only; the others for any alpha, sigma.
"""

import torch


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alpha, sigma) -> torch.Tensor:
    return (x_t - sigma * eps) / alpha


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha, sigma) -> torch.Tensor:
    return (x_t - alpha * x0) / sigma


def v_from_x0_eps(x0: torch.Tensor, eps: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """Salimans & Ho 2022 (arXiv:2202.00512), Sec. 4: v = alpha eps - sigma x0."""
    return alpha * eps - sigma * x0


def x0_from_v(x_t: torch.Tensor, v: torch.Tensor, alpha, sigma) -> torch.Tensor:
    return alpha * x_t - sigma * v


def eps_from_v(x_t: torch.Tensor, v: torch.Tensor, alpha, sigma) -> torch.Tensor:
    return sigma * x_t + alpha * v


def score_from_eps(eps: torch.Tensor, sigma) -> torch.Tensor:
    """grad_x log q(x_t) = -E[eps | x_t] / sigma (Vincent 2011; Song & Ermon 2019)."""
    return -eps / sigma


def eps_from_score(score: torch.Tensor, sigma) -> torch.Tensor:
    return -sigma * score


def flow_from_x0_eps(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The velocity d x_t / dt = eps - x0 of the interpolant x_t = (1 - t) x0 + t eps (Liu et al. 2022)."""
    return eps - x0


def x0_eps_from_flow(x_t: torch.Tensor, u: torch.Tensor, alpha, sigma) -> tuple[torch.Tensor, torch.Tensor]:
    """x0, eps from u = eps - x0: x_t = alpha x0 + sigma (x0 + u), so x0 = (x_t - sigma u) / (alpha + sigma)."""
    x0 = (x_t - sigma * u) / (alpha + sigma)
    return x0, x0 + u


def edm_scales(alpha, sigma, sigma_data: float):
    """EDM's (Karras et al. 2022, Table 1) c_skip, c_out at sigma/alpha, written in x_t = alpha x0 + sigma eps:
    x0 = c_skip x_t + c_out F. Finite at alpha = 0."""
    norm = sigma**2 + (alpha * sigma_data) ** 2
    return alpha * sigma_data**2 / norm, sigma * sigma_data / norm.sqrt()


def edm_target(x0: torch.Tensor, eps: torch.Tensor, alpha, sigma, sigma_data: float) -> torch.Tensor:
    """F = (x0 - c_skip x_t) / c_out, the network target of EDM's preconditioning (eq. 8)."""
    norm = sigma**2 + (alpha * sigma_data) ** 2
    return (sigma * x0 - alpha * sigma_data**2 * eps) / (sigma_data * norm.sqrt())
