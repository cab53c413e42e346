"""The exact denoiser for data N(M, S^2) per pixel, and the helpers the sampler tests share: for Gaussian data the
probability-flow ODE maps the noise to the data exactly, and each solver's map is affine and can be written out."""

import torch

from difflab.diffusion import CosineSchedule, Denoiser, Epsilon, LinearSchedule
from difflab.diffusion.gaussian import GaussianDataNet
from difflab.module import DiffusionModule
from difflab.sampling import DPMSolverPP

M, S = 0.1, 0.25
SHAPE = (1, 32, 32)
SCHEDULES = [LinearSchedule(), CosineSchedule()]
SCHEDULE_IDS = ["linear", "cosine"]


def exact_denoiser(schedule, mean=M, std=S) -> Denoiser:
    abar = schedule.alphas_cumprod
    return Denoiser(GaussianDataNet(abar, Epsilon(), mean, std), abar, Epsilon())


def exact_module(schedule, sampler) -> DiffusionModule:
    net = GaussianDataNet(schedule.alphas_cumprod, Epsilon(), M, S)
    return DiffusionModule(net, schedule, Epsilon(), SHAPE, sampler=sampler)


def exact_map(sampler, schedule) -> tuple[float, float]:
    """(slope, offset) of the sampler's affine map from x_T to x0, run in float64 on x_T = 0 and 1."""
    x = torch.tensor([0.0, 1.0], dtype=torch.float64).reshape(2, 1, 1, 1)
    out = sampler(exact_denoiser(schedule), None, (1, 1, 1), x=x, start=schedule.timesteps - 1).flatten()
    return float(out[1] - out[0]), float(out[0])


class CountingDenoiser:
    """The exact denoiser, recording every call's (t, x_t)."""

    def __init__(self, schedule):
        self.inner, self.calls = exact_denoiser(schedule), []
        self.alphas_cumprod, self.timesteps = self.inner.alphas_cumprod, self.inner.timesteps

    def __call__(self, x, t):
        self.calls.append((t, x.clone()))
        return self.inner(x, t)


def DPMSolverPPCorrector(**kwargs) -> DPMSolverPP:
    """DPM-Solver++(2M) with the corrector."""
    return DPMSolverPP(corrector=True, **kwargs)
