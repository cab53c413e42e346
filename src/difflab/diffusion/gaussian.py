"""The exact denoiser for Gaussian data: a reference model for tests and benchmarks.

If every pixel of the data is N(m, s^2) independently, then given x_t = alpha x0 + sigma eps,
E[x0 | x_t] = m + alpha s^2 / (alpha^2 s^2 + sigma^2) (x_t - alpha m), and E[eps | x_t] follows.
"""

import torch
from torch import nn

from difflab.diffusion.parameterization import eps_from_x0
from difflab.diffusion.schedules import alpha_sigma


def gaussian_posterior_mean(x_t: torch.Tensor, alpha, sigma, mean: float, std: float) -> torch.Tensor:
    """E[x0 | x_t] for data N(mean, std^2) per pixel."""
    return mean + alpha * std**2 / (alpha**2 * std**2 + sigma**2) * (x_t - alpha * mean)


class GaussianDataNet(nn.Module):
    """A 'network' whose output is the best possible for the objective when data are N(mean, std^2) per pixel."""

    def __init__(self, alphas_cumprod: torch.Tensor, objective, mean: float, std: float, in_channels: int = 1):
        super().__init__()
        self.alphas_cumprod, self.objective = alphas_cumprod, objective
        self.mean, self.std = mean, std
        self.in_channels, self.num_classes = in_channels, None
        self._dummy = nn.Parameter(torch.zeros(()))  # gives the module a device and an optimiser something to hold

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y=None) -> torch.Tensor:
        x = x_t.double()
        alpha, sigma = alpha_sigma(self.alphas_cumprod, t, x)
        x0 = gaussian_posterior_mean(x, alpha, sigma, self.mean, self.std)
        out = self.objective.from_x0_eps(x0, eps_from_x0(x, x0, alpha, sigma), x, alpha, sigma)
        return out.to(x_t.dtype) + 0 * self._dummy


class GaussianProcessNet(GaussianDataNet):
    """GaussianDataNet on any process (processes.py): it reads its input as net(c_in x_t, c_noise)."""

    def __init__(self, process, objective, mean: float, std: float, in_channels: int = 1):
        super().__init__(None, objective, mean, std, in_channels)
        self.process = process

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor, y=None) -> torch.Tensor:
        time = self.process.time_of(c_noise.double())
        shape = (-1,) + (1,) * (x_in.ndim - 1)
        alpha, sigma = (v.reshape(shape) for v in self.process.alpha_sigma(time))
        x = x_in.double() / self.process.c_in(time).reshape(shape)
        x0 = gaussian_posterior_mean(x, alpha, sigma, self.mean, self.std)
        out = self.objective.from_x0_eps(x0, eps_from_x0(x, x0, alpha, sigma), x, alpha, sigma)
        return out.to(x_in.dtype) + 0 * self._dummy
