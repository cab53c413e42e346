"""Noise schedules of the discrete-time forward process q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I).

Notation: alphas_cumprod[t] = abar_t (Ho et al. 2020), alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t),
for integer t in 0..T-1. Schedule maths is done in float64. Each schedule is also a process in the sense of
processes.py, the case of T levels: its time is the integer level, which the network sees as it is.
"""

import math
from dataclasses import dataclass

import torch

from difflab.errors import ConfigError


def alphas_cumprod_from_betas(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s<=t} (1 - beta_s)."""
    return torch.cumprod(1.0 - betas, dim=0)


def betas_from_alphas_cumprod(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """beta_t = 1 - abar_t / abar_{t-1}, with abar_{-1} = 1: [T] float64."""
    abar = alphas_cumprod.double()
    return 1 - abar / torch.cat([abar.new_ones(1), abar[:-1]])


def linear_betas(timesteps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """Ho et al. 2020 (arXiv:2006.11239), Sec. 4: betas linear from beta_start to beta_end."""
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, s: float, max_beta: float) -> torch.Tensor:
    """Nichol & Dhariwal 2021 (arXiv:2102.09672), eq. 17: f(t) = cos^2(((t/T + s) / (1 + s)) pi/2),
    beta_t = 1 - f(t+1)/f(t), clipped at max_beta to avoid singularities near t = T."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return torch.clamp(1.0 - f[1:] / f[:-1], max=max_beta)


def _check_timesteps(timesteps: int) -> None:
    if not isinstance(timesteps, int) or isinstance(timesteps, bool) or timesteps < 1:
        raise ConfigError(f"schedule.timesteps={timesteps!r} is invalid; allowed: an integer >= 1 (e.g. 1000)")


class _Levels:
    """The process interface (processes.py) of a schedule with T integer levels."""

    variance_preserving = True
    alpha_reaches_zero = False

    def alpha_sigma(self, t: torch.Tensor):
        return vp_alpha_sigma(self.alphas_cumprod.to(t.device)[t.long()])

    def sample_t(self, n: int, generator: torch.Generator, device) -> torch.Tensor:
        return torch.randint(0, self.timesteps, (n,), device=device, generator=generator)

    def c_in(self, t):
        return torch.ones_like(t, dtype=torch.float64)

    def c_noise(self, t):
        return t

    def time_of(self, c_noise):
        return c_noise

    def grid(self, steps: int, spacing: str = "uniform") -> torch.Tensor:
        """`steps` levels evenly spread from T-1 down to 0, [steps] int64."""
        return torch.linspace(self.timesteps - 1, 0, steps, dtype=torch.float64).round().long()


@dataclass(frozen=True)
class LinearSchedule(_Levels):
    """Linear betas (Ho et al. 2020): 1e-4 to 0.02 over T = 1000 steps by default."""

    name = "linear"

    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def __post_init__(self):
        _check_timesteps(self.timesteps)
        if not 0 < self.beta_start <= self.beta_end < 1:
            raise ConfigError(
                f"schedule.beta_start={self.beta_start}, schedule.beta_end={self.beta_end} are invalid; "
                "allowed: 0 < beta_start <= beta_end < 1"
            )

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """[T] float64, decreasing within (0, 1]."""
        return alphas_cumprod_from_betas(linear_betas(self.timesteps, self.beta_start, self.beta_end))


@dataclass(frozen=True)
class CosineSchedule(_Levels):
    """Cosine abar (Nichol & Dhariwal 2021): offset s = 0.008, betas clipped at 0.999."""

    name = "cosine"

    timesteps: int = 1000
    s: float = 0.008
    max_beta: float = 0.999

    def __post_init__(self):
        _check_timesteps(self.timesteps)
        if self.s < 0:
            raise ConfigError(f"schedule.s={self.s} is invalid; allowed: s >= 0 (the paper uses 0.008)")
        if not 0 < self.max_beta < 1:
            raise ConfigError(f"schedule.max_beta={self.max_beta} is invalid; allowed: 0 < max_beta < 1")

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """[T] float64, decreasing within (0, 1]."""
        return alphas_cumprod_from_betas(cosine_betas(self.timesteps, self.s, self.max_beta))


def vp_alpha_sigma(abar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha = sqrt(abar), sigma = sqrt(1 - abar), elementwise: the one tensor form the helpers below share."""
    return abar.sqrt(), (1 - abar).sqrt()


def alpha_sigma(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha_t, sigma_t for integer timesteps t [N], shaped [N x 1 x ... x 1] to broadcast against `like`,
    in like's dtype and device (computed in float64 first)."""
    shape = (-1,) + (1,) * (like.ndim - 1)
    alpha, sigma = vp_alpha_sigma(alphas_cumprod.to(device=like.device)[t.to(like.device)])
    return alpha.reshape(shape).to(like.dtype), sigma.reshape(shape).to(like.dtype)


def alpha_sigma_at(alphas_cumprod: torch.Tensor, t: int) -> tuple[float, float]:
    """alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t) at one integer timestep t, as Python floats."""
    alpha, sigma = vp_alpha_sigma(alphas_cumprod[t])
    return alpha.item(), sigma.item()


def alpha_sigma_of(abar: float) -> tuple[float, float]:
    """alpha = sqrt(abar), sigma = sqrt(1 - abar) of one cumulative alpha given as a Python float."""
    return abar**0.5, (1 - abar) ** 0.5


def karras_sigma(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Karras et al.'s (2022) noise level sigma_t / alpha_t = sqrt((1 - abar_t) / abar_t), elementwise."""
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()
