"""What the network predicts, and the loss that trains it.

Each objective reads a network output as (x0, eps) and builds its regression target. Losses are per sample,
[N], so that callers can weight, bucket or average them.
"""

from dataclasses import dataclass, field

import torch

from difflab.diffusion import parameterization as p
from difflab.diffusion.weighting import Uniform


@dataclass(frozen=True)
class _Objective:
    weighting: object = field(default_factory=Uniform)

    name = "objective"

    def loss(self, out: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor, alpha, sigma) -> torch.Tensor:
        """Weighted squared error, mean over pixels: [N]."""
        err = (out - self.target(x0, eps, alpha, sigma)).float() ** 2
        w = self.weighting(self, alpha.float(), sigma.float()).reshape(-1)
        return w * err.flatten(1).mean(1)

    def natural_weight(self, alpha, sigma):
        return torch.ones_like(alpha)


@dataclass(frozen=True)
class Epsilon(_Objective):
    """Predict the noise (Ho et al. 2020)."""

    name = "epsilon"

    def target(self, x0, eps, alpha, sigma):
        return eps

    def to_x0_eps(self, out, x_t, alpha, sigma):
        return p.x0_from_eps(x_t, out, alpha, sigma), out

    def from_x0_eps(self, x0, eps, x_t, alpha, sigma):
        return eps

    def x0_error_scale(self, alpha, sigma):
        return (alpha / sigma) ** 2


@dataclass(frozen=True)
class V(_Objective):
    """Predict v = alpha eps - sigma x0 (Salimans & Ho 2022)."""

    name = "v"

    def target(self, x0, eps, alpha, sigma):
        return p.v_from_x0_eps(x0, eps, alpha, sigma)

    def to_x0_eps(self, out, x_t, alpha, sigma):
        return p.x0_from_v(x_t, out, alpha, sigma), p.eps_from_v(x_t, out, alpha, sigma)

    def from_x0_eps(self, x0, eps, x_t, alpha, sigma):
        return p.v_from_x0_eps(x0, eps, alpha, sigma)

    def x0_error_scale(self, alpha, sigma):
        return 1.0 + (alpha / sigma) ** 2


@dataclass(frozen=True)
class Score(_Objective):
    """Predict grad log q(x_t) = -eps / sigma; the uniform weighting lambda_t = sigma_t^2 makes the loss denoising
    score matching (Vincent 2011; Song et al. 2021, eq. 7), which equals the eps loss in expectation."""

    name = "score"

    def target(self, x0, eps, alpha, sigma):
        return p.score_from_eps(eps, sigma)

    def to_x0_eps(self, out, x_t, alpha, sigma):
        eps = p.eps_from_score(out, sigma)
        return p.x0_from_eps(x_t, eps, alpha, sigma), eps

    def from_x0_eps(self, x0, eps, x_t, alpha, sigma):
        return p.score_from_eps(eps, sigma)

    def x0_error_scale(self, alpha, sigma):
        return alpha**2 / sigma**4

    def natural_weight(self, alpha, sigma):
        return sigma**2
