"""The adapter that joins network, schedule and objective: the only place that knows all three."""

from dataclasses import dataclass

import torch

from difflab.diffusion.processes import vp_alphas_cumprod
from difflab.diffusion.schedules import alpha_sigma
from difflab.precision import autocast


LEVELS = 1000  # a continuous process read as a table: as many levels as the DDPM schedules have


@dataclass(frozen=True)
class Levels:
    """A continuous-time process read at K times, as a discrete schedule of K levels.

    Level i (0 = the least noisy) is time `times[i]`; its alphas_cumprod is the variance-preserving abar with the
    same signal-to-noise ratio (processes.vp_alphas_cumprod). Every sampler and application is written over
    integer levels of a variance-preserving chain, and runs unchanged on these: the Denoiser rescales the state
    to the process's x_t = alpha x0 + sigma eps before the network sees it."""

    process: object
    times: torch.Tensor  # [K] float64, noise increasing with the index

    @classmethod
    def of(cls, process, steps: int | None = None, spacing: str | None = None) -> "Levels":
        """The times of process.grid(steps, spacing): steps None = LEVELS, spacing None = the process's own."""
        steps = LEVELS if steps is None else steps
        grid = process.grid(steps) if spacing is None else process.grid(steps, spacing)
        return cls(process, grid.flip(0))

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return vp_alphas_cumprod(*self.process.alpha_sigma(self.times))


def level_table(process):
    """The levels everything but a sampler's own grid indexes (applications, bits/dim, start timesteps): a discrete
    schedule's alphas_cumprod [T], or a continuous process's LEVELS levels evenly in log-SNR."""
    if process.timesteps is not None:
        return process.alphas_cumprod
    return Levels.of(process, LEVELS, "logsnr")


def sampling_schedule(process, steps=None, spacing: str | None = None):
    """What a Denoiser reads `process` through for a sampler of `steps` and `spacing`: a discrete schedule's
    alphas_cumprod [T], or a continuous process's Levels at the sampler's own grid (spacing None: the process's)."""
    if process.timesteps is not None:
        return process.alphas_cumprod
    return Levels.of(process, steps, spacing)


class Denoiser:
    """D(x_t, t) -> (x0_hat, eps_hat) for integer timesteps t [N] (or one int for the whole batch).

    `y` (labels [N], optional) is passed to the network as `y=`; samplers never see it. With `autocast_dtype`
    (torch.bfloat16) the network alone runs under autocast; its output is read back in x_t's dtype.
    `schedule` is a discrete schedule's alphas_cumprod [T], or the Levels of a continuous process.
    """

    def __init__(self, net, schedule, objective, y: torch.Tensor | None = None,
                 autocast_dtype: torch.dtype | None = None):
        self.net = net
        self.levels = schedule if isinstance(schedule, Levels) else None
        self.alphas_cumprod = schedule.alphas_cumprod if self.levels is not None else schedule
        self.objective = objective
        self.y = y
        self.autocast_dtype = autocast_dtype

    @property
    def timesteps(self) -> int:
        return len(self.alphas_cumprod)

    def __call__(self, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(t, device=x_t.device, dtype=torch.long).expand(x_t.shape[0])
        if self.levels is not None:
            return self._continuous(x_t, t)
        out = self._net(x_t, t)
        alpha, sigma = alpha_sigma(self.alphas_cumprod, t, out)
        return self.objective.to_x0_eps(out, x_t, alpha, sigma)

    def _net(self, x: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
        with autocast(x.device, self.autocast_dtype):
            out = self.net(x, noise_level) if self.y is None else self.net(x, noise_level, y=self.y)
        return out.to(x.dtype)

    def _continuous(self, x_vp: torch.Tensor, t: torch.Tensor):
        """x_vp is the variance-preserving state at level t: the process's x_t is it times sqrt(alpha^2 + sigma^2),
        and (x0, eps) are the same in both."""
        process = self.levels.process
        time = self.levels.times.to(x_vp.device)[t]
        shape = (-1,) + (1,) * (x_vp.ndim - 1)
        alpha, sigma = (v.reshape(shape) for v in process.alpha_sigma(time))
        x_t = x_vp * (alpha**2 + sigma**2).sqrt().to(x_vp.dtype)
        out = self._net(x_t * process.c_in(time).reshape(shape).to(x_vp.dtype), process.c_noise(time).to(x_vp.dtype))
        return self.objective.to_x0_eps(out, x_t, alpha.to(x_vp.dtype), sigma.to(x_vp.dtype))
