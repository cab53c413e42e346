"""The sampling side of a trained model: its denoiser, the schedule its sampler reads, and generation.

SamplingMixin serves any object that holds `net`, `schedule` (a process), `objective`, `sampler`, `image_shape`,
`levels` (diffusion.denoiser.level_table of the schedule) and `autocast_dtype`; DiffusionModule is one.
"""

import torch

from difflab.diffusion.denoiser import sampling_schedule
from difflab.diffusion.guidance import make_denoiser
from difflab.sampling.generate import generate


class SamplingMixin:
    """denoiser / sampling_schedule / sample of a trained model, each a thin call of diffusion.guidance's
    make_denoiser, diffusion.denoiser's sampling_schedule and sampling.generate."""

    def denoiser(self, y: torch.Tensor | None = None, guidance_scale: float | None = None, sampler=None,
                 schedule=None):
        """D(x_t, t) -> (x0_hat, eps_hat) for labels y [N], guided with `guidance_scale` if given (make_denoiser),
        over `schedule` (alphas_cumprod or Levels), else at the levels `sampler` visits, else over the module's
        level table (module.timesteps levels, which applications index)."""
        if schedule is None:
            schedule = self.levels if sampler is None else self.sampling_schedule(sampler)
        return make_denoiser(self.net, schedule, self.objective, y, guidance_scale, self.autocast_dtype)

    def sampling_schedule(self, sampler=None):
        """The schedule a denoiser for `sampler` reads: alphas_cumprod [T], or a continuous process's Levels."""
        sampler = self.sampler if sampler is None else sampler
        return sampling_schedule(self.schedule, sampler.steps, sampler.grid_spacing)

    def sample(self, num_samples: int, sampler=None, **kwargs) -> torch.Tensor:
        """`num_samples` images [N x C x H x W] in [-1, 1] from this module's sampler unless given: keyword
        arguments as in difflab.sampling.generate (seed, y, guidance_scale, temperature, batch_size, ...)."""
        sampler = self.sampler if sampler is None else sampler
        return generate(self.net, self.sampling_schedule(sampler), self.objective, sampler, self.image_shape,
                        num_samples, autocast_dtype=self.autocast_dtype, **kwargs)
