"""Conversions between the quantities a denoiser can predict, given x_t = alpha x0 + sigma eps.

The one place each formula is written. alpha and sigma broadcast against x (alpha^2 + sigma^2 = 1).
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
