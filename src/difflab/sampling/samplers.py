"""Samplers as small frozen configs over `sample_reverse`; conf/sampler/*.yaml instantiate these.

Call: sampler(denoiser, noise, shape, temperature=1.0) -> x0 [N x *shape]. The initial x_T is the first
draw of `noise` scaled by the temperature. Every sampler also takes, keyword-only:
  x, start   begin from a given x_t at integer timestep `start` instead of noise at T-1 (SDEdit, inversion);
             the sampler's grid then spans start..0 with the same number of steps;
  project    project(t_next, x) -> x after every step (t_next = -1 for the output): conditioning hooks.
"""

from dataclasses import dataclass

from difflab.errors import ConfigError
from difflab.sampling.ancestral import sample_reverse
from difflab.sampling.grids import respaced_timesteps


def _check_steps(steps, what: str) -> None:
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise ConfigError(f"sampler.steps={steps!r} is invalid; allowed: an integer from 1 to schedule.timesteps{what}")


def check_start(start, T: int) -> int:
    if not (isinstance(start, int) and not isinstance(start, bool) and 0 <= start < T):
        raise ConfigError(f"start timestep {start!r} is invalid; allowed: an integer from 0 to {T - 1}")
    return start


@dataclass(frozen=True)
class _Sampler:
    steps: int | None = None
    clip_x0: bool = True  # clamp predictions of x0 to the data range [-1, 1] (False for unbounded data)

    def check(self, timesteps: int) -> None:
        """Raise ConfigError unless 1 <= steps <= T."""
        if self.steps is not None and self.steps > timesteps:
            raise ConfigError(
                f"sampler.steps={self.steps} is invalid; allowed: an integer from 1 to schedule.timesteps={timesteps}"
            )

    def timesteps(self, T: int, start: int | None = None):
        """The grid from `start` (default T-1) down to 0: steps points, at most start + 1."""
        self.check(T)
        span = T if start is None else check_start(start, T) + 1
        return respaced_timesteps(span, min(self.steps or T, span))

    def nfe(self, T: int) -> int:
        """Network evaluations per sample."""
        return self.steps or T

    def __call__(self, denoiser, noise, shape, temperature=1.0, callback=None, progress=False, *,
                 x=None, start=None, project=None):
        timesteps = self.timesteps(denoiser.timesteps, start)
        x = temperature * noise(shape) if x is None else x
        eta, large_variance = self._noise_level()
        return sample_reverse(
            denoiser, x, noise, timesteps, eta=eta, temperature=temperature, large_variance=large_variance,
            callback=callback, progress=progress, clip_x0=self.clip_x0, project=project,
        )


@dataclass(frozen=True)
class DDPM(_Sampler):
    """Ancestral sampling (Ho et al. 2020); steps=None runs all T steps, fewer are respaced."""

    variance: str = "posterior"

    def __post_init__(self):
        _check_steps(self.steps, " (or null for all)")
        if self.variance not in ("posterior", "beta"):
            raise ConfigError(f"sampler.variance={self.variance!r} is invalid; allowed: posterior, beta")

    def _noise_level(self):
        return 1.0, self.variance == "beta"


@dataclass(frozen=True)
class DDIM(_Sampler):
    """DDIM (Song et al. 2021): deterministic at eta = 0, DDPM-like at eta = 1."""

    steps: int | None = 50
    eta: float = 0.0

    def __post_init__(self):
        _check_steps(self.steps, " (or null for all)")
        if not 0 <= self.eta:
            raise ConfigError(f"sampler.eta={self.eta} is invalid; allowed: eta >= 0 (0 = deterministic, 1 = DDPM)")

    def _noise_level(self):
        return self.eta, False
