"""What the network predicts, and the loss that trains it.

Each objective reads a network output as (x0, eps) and builds its regression target. Losses are per sample,
[N], so that callers can weight, bucket or average them.
"""

from dataclasses import dataclass, field

import torch

from difflab.diffusion import parameterization as p
from difflab.diffusion.weighting import Uniform
from difflab.errors import ConfigError


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

    def check(self, process) -> None:
        """Raise ConfigError if this objective cannot be read back as (x0, eps) on `process` (schedule=...)."""


def _check_alpha_positive(objective, process) -> None:
    if process.alpha_reaches_zero:
        raise ConfigError(f"objective={objective.name} cannot recover x0 where alpha = 0, which "
                          f"schedule={process.name} reaches at its noisiest level (t = 1); "
                          "allowed there: objective=flow, x0 or edm")


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

    def check(self, process) -> None:
        _check_alpha_positive(self, process)


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

    def check(self, process) -> None:
        if not process.variance_preserving:
            raise ConfigError(f"objective=v is defined on variance-preserving processes (alpha^2 + sigma^2 = 1), "
                              f"not on schedule={process.name}; allowed there: objective=flow, x0, edm "
                              "or epsilon")


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

    def check(self, process) -> None:
        _check_alpha_positive(self, process)


@dataclass(frozen=True)
class X0(_Objective):
    """Predict the clean image x0 (Ramesh et al. 2022; Karras et al. 2022 without preconditioning)."""

    name = "x0"

    def target(self, x0, eps, alpha, sigma):
        return x0

    def to_x0_eps(self, out, x_t, alpha, sigma):
        return out, p.eps_from_x0(x_t, out, alpha, sigma)

    def from_x0_eps(self, x0, eps, x_t, alpha, sigma):
        return x0

    def x0_error_scale(self, alpha, sigma):
        return torch.ones_like(alpha)


@dataclass(frozen=True)
class Flow(_Objective):
    """Predict the velocity u = eps - x0 of the interpolant (flow matching: Lipman et al. 2023; rectified flow:
    Liu et al. 2022); on rectified_flow this is the probability-flow ODE's drift dx/dt."""

    name = "flow"

    def target(self, x0, eps, alpha, sigma):
        return p.flow_from_x0_eps(x0, eps)

    def to_x0_eps(self, out, x_t, alpha, sigma):
        return p.x0_eps_from_flow(x_t, out, alpha, sigma)

    def from_x0_eps(self, x0, eps, x_t, alpha, sigma):
        return p.flow_from_x0_eps(x0, eps)

    def x0_error_scale(self, alpha, sigma):
        return ((alpha + sigma) / sigma) ** 2


@dataclass(frozen=True)
class EDMPrecond(_Objective):
    """EDM's preconditioned denoiser (Karras et al. 2022, eq. 7): x0_hat = c_skip x_t + c_out F, the network F
    regressed on (x0 - c_skip x_t) / c_out with unit weight, which is EDM's loss weight lambda(sigma) on x0."""

    sigma_data: float = 0.5

    name = "edm"

    def __post_init__(self):
        if not self.sigma_data > 0:
            raise ConfigError(f"objective.sigma_data={self.sigma_data} is invalid; allowed: a number > 0 (EDM: 0.5)")

    def target(self, x0, eps, alpha, sigma):
        return p.edm_target(x0, eps, alpha, sigma, self.sigma_data)

    def to_x0_eps(self, out, x_t, alpha, sigma):
        c_skip, c_out = p.edm_scales(alpha, sigma, self.sigma_data)
        x0 = c_skip * x_t + c_out * out
        return x0, p.eps_from_x0(x_t, x0, alpha, sigma)

    def from_x0_eps(self, x0, eps, x_t, alpha, sigma):
        return p.edm_target(x0, eps, alpha, sigma, self.sigma_data)

    def x0_error_scale(self, alpha, sigma):
        return 1 / p.edm_scales(alpha, sigma, self.sigma_data)[1] ** 2
