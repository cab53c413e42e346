"""Continuous-time forward processes x_t = alpha(t) x0 + sigma(t) eps, beside the discrete DDPM schedules.

Every process (these and schedules.LinearSchedule / CosineSchedule, the case of T integer levels) answers:
  alpha_sigma(t)        alpha(t), sigma(t) in float64, shaped like t
  sample_t(n, gen, dev) the training distribution of t
  c_in(t), c_noise(t)   what the network sees: net(c_in x_t, c_noise) (Karras et al. 2022, Table 1);
                        time_of(c_noise) is its inverse; fraction(t) in [0, 1] places t from least to most noise
  grid(steps, spacing)  `steps` sampling times from the noisiest level down; samplers end on x0_hat there
  timesteps             T for a discrete schedule, None for continuous time
  variance_preserving   alpha^2 + sigma^2 = 1 at every t
The networks' noise-level input keeps the DDPM timestep's range, [0, 1000): the sinusoidal embedding is tuned
to it.
"""

import math
from dataclasses import dataclass

import torch

from difflab.errors import ConfigError

SPACINGS = ("uniform", "karras", "logsnr")


def vp_alphas_cumprod(alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The variance-preserving abar = alpha^2 / (alpha^2 + sigma^2) with the same signal-to-noise ratio: samplers
    run on it, since x_t / sqrt(alpha^2 + sigma^2) is x at that abar of a VP process (Kingma et al. 2021)."""
    return alpha**2 / (alpha**2 + sigma**2)


def karras_grid(sigma_max: float, sigma_min: float, steps: int, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. 2022, eq. 5: `steps` noise levels from sigma_max down to sigma_min, [steps] float64."""
    if steps == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    i = torch.arange(steps, dtype=torch.float64) / (steps - 1)
    return (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


def check_spacing(spacing: str) -> None:
    if spacing not in SPACINGS:
        raise ConfigError(f"sampler.spacing={spacing!r} is invalid; allowed: {', '.join(SPACINGS)}")


def _positive(**values) -> None:
    for key, value in values.items():
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
            raise ConfigError(f"schedule.{key}={value!r} is invalid; allowed: a number > 0")


@dataclass(frozen=True)
class RectifiedFlow:
    """x_t = (1 - t) x0 + t eps, t in [0, 1] (Liu et al. 2022; Lipman et al. 2023). Training t is uniform or
    logit-normal, t = sigmoid(mean + std n) (Esser et al. 2024, SD3, Sec. 3.1)."""

    t_sampling: str = "logit_normal"
    mean: float = 0.0
    std: float = 1.0

    name = "rectified_flow"
    timesteps = None
    variance_preserving = False
    alpha_reaches_zero = True
    # Sampling starts here, not at t = 1 where alpha = 0: the samplers' log-SNR and sigma/alpha stay finite, and
    # x_t there is pure noise up to a 1e-4 share of x0 (DDPM's linear schedule ends at alpha 6e-3).
    T_MAX = 1 - 1e-4

    def __post_init__(self):
        if self.t_sampling not in ("uniform", "logit_normal"):
            raise ConfigError(f"schedule.t_sampling={self.t_sampling!r} is invalid; allowed: uniform, logit_normal")
        if not isinstance(self.mean, (int, float)) or isinstance(self.mean, bool) or not math.isfinite(self.mean):
            raise ConfigError(f"schedule.mean={self.mean!r} is invalid; allowed: a finite number (SD3: 0)")
        _positive(std=self.std)

    def alpha_sigma(self, t: torch.Tensor):
        t = t.double()
        return 1 - t, t

    def sample_t(self, n: int, generator: torch.Generator, device) -> torch.Tensor:
        if self.t_sampling == "uniform":
            return torch.rand(n, device=device, generator=generator)
        return torch.sigmoid(self.mean + self.std * torch.randn(n, device=device, generator=generator))

    def c_in(self, t):
        return torch.ones_like(t)

    def c_noise(self, t):
        return 1000 * t

    def time_of(self, c_noise):
        """The t whose c_noise this is."""
        return c_noise / 1000

    def fraction(self, t):
        """Where t lies from the least (0) to the most (1) noise: the training loss's buckets."""
        return t

    def grid(self, steps: int, spacing: str = "uniform") -> torch.Tensor:
        """`steps` times: evenly in t from T_MAX down to 1/steps (Euler's grid), or placed by sigma/alpha =
        t / (1 - t) (karras) or by log-SNR (logsnr) over EDM's range of sigma/alpha, 80 down to 0.002 (beyond
        80 the state is noise to within 1e-4 of its variance; Karras et al. 2022)."""
        check_spacing(spacing)
        if spacing == "uniform":
            return torch.linspace(1, 1 / steps, steps, dtype=torch.float64).clamp(max=self.T_MAX)
        ratio = karras_grid(80.0, 0.002, steps) if spacing == "karras" else \
            torch.logspace(math.log10(80.0), math.log10(0.002), steps, dtype=torch.float64)
        return ratio / (1 + ratio)


@dataclass(frozen=True)
class EDM:
    """The variance-exploding process of Karras et al. 2022 (EDM): x = x0 + sigma eps, t = sigma in
    [sigma_min, sigma_max], training sigma log-normal, ln sigma ~ N(P_mean, P_std^2), and the input scaling
    c_in = 1 / sqrt(sigma^2 + sigma_data^2). Its output preconditioning is objective=edm."""

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    P_mean: float = -1.2
    P_std: float = 1.2
    rho: float = 7.0

    name = "edm"
    timesteps = None
    variance_preserving = False
    alpha_reaches_zero = False

    def __post_init__(self):
        _positive(sigma_min=self.sigma_min, sigma_max=self.sigma_max, sigma_data=self.sigma_data,
                  P_std=self.P_std, rho=self.rho)
        if self.sigma_min >= self.sigma_max:
            raise ConfigError(f"schedule.sigma_min={self.sigma_min}, schedule.sigma_max={self.sigma_max} are invalid; "
                              "allowed: 0 < sigma_min < sigma_max (EDM: 0.002, 80)")
        if not isinstance(self.P_mean, (int, float)) or isinstance(self.P_mean, bool):
            raise ConfigError(f"schedule.P_mean={self.P_mean!r} is invalid; allowed: a number (EDM: -1.2)")

    def alpha_sigma(self, t: torch.Tensor):
        t = t.double()
        return torch.ones_like(t), t

    def sample_t(self, n: int, generator: torch.Generator, device) -> torch.Tensor:
        return (self.P_mean + self.P_std * torch.randn(n, device=device, generator=generator)).exp()

    def c_in(self, t):
        return 1 / (t**2 + self.sigma_data**2).sqrt()

    def c_noise(self, t):
        """EDM's c_noise = ln(sigma) / 4, times 1000 for the timestep embedding's range."""
        return 250 * t.log()

    def time_of(self, c_noise):
        return (c_noise / 250).exp()

    def fraction(self, t):
        low, high = math.log(self.sigma_min), math.log(self.sigma_max)
        return ((t.log() - low) / (high - low)).clamp(0, 1)

    def grid(self, steps: int, spacing: str = "karras") -> torch.Tensor:
        check_spacing(spacing)
        if spacing == "karras":
            return karras_grid(self.sigma_max, self.sigma_min, steps, self.rho)
        if spacing == "logsnr":
            return torch.logspace(math.log10(self.sigma_max), math.log10(self.sigma_min), steps, dtype=torch.float64)
        return torch.linspace(self.sigma_max, self.sigma_min, steps, dtype=torch.float64)
