"""A DiffusionModule around the exact denoiser of Gaussian data N(M, S^2) per pixel: closed forms for the apps."""

import pytest

from difflab.diffusion import Epsilon, LinearSchedule
from difflab.diffusion.gaussian import GaussianDataNet
from difflab.module import DiffusionModule
from difflab.sampling import DDIM

M, S = 0.1, 0.25


def gaussian_module(size: int = 16, sampler=None, schedule=None):
    schedule = schedule or LinearSchedule()
    net = GaussianDataNet(schedule.alphas_cumprod, Epsilon(), M, S)
    return DiffusionModule(net, schedule, Epsilon(), (1, size, size), sampler=sampler or DDIM(clip_x0=False)).eval()


@pytest.fixture
def gaussian():
    return gaussian_module()
