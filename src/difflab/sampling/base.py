"""What every sampler shares: the call interface, its grid of timesteps and the checks of steps and start.

Call: sampler(denoiser, noise, shape, temperature=1.0) -> x0 [N x *shape]. The initial x_T is the first
draw of `noise` scaled by the temperature. Every sampler also takes, keyword-only:
  x, start   begin from a given x_t at integer timestep `start` instead of noise at T-1 (SDEdit, inversion);
             the sampler's grid then spans start..0 with the same number of steps;
  project    project(t_next, x) -> x after every step (t_next = -1 for the output): conditioning hooks.
A sampler family is a frozen dataclass over one function `solve(denoiser, x, timesteps, ...)`; its
`solver_options` give the keyword arguments that its own fields choose.
"""

from dataclasses import dataclass

import torch

from difflab.errors import ConfigError
from difflab.sampling.grids import SPACING_NAMES, timestep_grid


def check_steps(steps) -> None:
    """Raise ConfigError unless steps is None (all T timesteps) or an integer >= 1."""
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise ConfigError(f"sampler.steps={steps!r} is invalid; allowed: an integer from 1 to schedule.timesteps "
                          "(or null for all)")


def check_start(start, T: int) -> int:
    if not (isinstance(start, int) and not isinstance(start, bool) and 0 <= start < T):
        raise ConfigError(f"start timestep {start!r} is invalid; allowed: an integer from 0 to {T - 1}")
    return start


@dataclass(frozen=True)
class Sampler:
    """The fields and call interface of every sampler; a family sets `solve` and `solver_options`."""

    steps: int | None = None
    clip_x0: bool = True  # clamp predictions of x0 to the data range [-1, 1] (False for unbounded data)
    spacing = "uniform"  # not a field here: DDPM and DDIM respace evenly in t; SpacedSampler makes it a choice

    def __post_init__(self):
        check_steps(self.steps)
        if self.spacing not in SPACING_NAMES:
            raise ConfigError(f"sampler.spacing={self.spacing!r} is invalid; allowed: {', '.join(SPACING_NAMES)}")

    def check(self, timesteps: int) -> None:
        """Raise ConfigError unless 1 <= steps <= T."""
        if self.steps is not None and self.steps > timesteps:
            raise ConfigError(
                f"sampler.steps={self.steps} is invalid; allowed: an integer from 1 to schedule.timesteps={timesteps}"
            )

    def timesteps(self, T: int, start: int | None = None, alphas_cumprod: torch.Tensor | None = None):
        """The grid from `start` (default T-1) down to 0: min(steps, start + 1) distinct points, [M] int64.
        alphas_cumprod [T] is needed by the logsnr and karras spacings."""
        self.check(T)
        start = T - 1 if start is None else check_start(start, T)
        return timestep_grid(self.spacing, min(self.steps or T, start + 1), start, alphas_cumprod)

    @property
    def grid_spacing(self) -> str | None:
        """The spacing asked of a continuous-time process's grid (diffusion/denoiser.Levels): None = the
        process's own (evenly in t for rectified flow, Karras' for EDM), as DDPM and DDIM respace evenly in t."""
        return None

    def nfe(self, T: int) -> int:
        """Network evaluations per sample."""
        return self.steps or T

    def __call__(self, denoiser, noise, shape, temperature=1.0, callback=None, progress=False, *,
                 x=None, start=None, project=None):
        """x0 [N x *shape]; temperature scales the initial noise and any noise the sampler injects."""
        timesteps = self.timesteps(denoiser.timesteps, start, denoiser.alphas_cumprod)
        x = temperature * noise(shape) if x is None else x
        return self.solve(denoiser, x, timesteps=timesteps, callback=callback, progress=progress,
                          clip_x0=self.clip_x0, project=project, **self.solver_options(noise, temperature))

    def solver_options(self, noise, temperature) -> dict:
        return {}


@dataclass(frozen=True)
class SpacedSampler(Sampler):
    """A sampler whose grid is placed by `spacing` (grids.py): uniform | logsnr | karras. The default logsnr comes
    closest to the closed form for Gaussian data on both the linear and cosine schedules (tests/sampling)."""

    spacing: str = "logsnr"  # a plain str, not Literal: OmegaConf.structured (evaluate's report) takes no Literal

    @property
    def grid_spacing(self) -> str | None:
        return self.spacing
