"""Heun's method over a denoiser D(x_t, t) -> (x0_hat, eps_hat) (Karras et al. 2022, arXiv:2206.00364,
Algorithm 1; Algorithm 2 with churn): a solver of the probability-flow ODE.

It runs on a grid of integer timesteps t_0 = start > ... > t_{M-1} = 0 (the network embeds integer t; grids.py)
and returns x0_hat at t_{M-1}. Notation: abar_t the cumulative alphas, alpha_t = sqrt(abar_t), sigma_t =
sqrt(1 - abar_t); Karras' sigma = sigma_t / alpha_t and state y = x_t / alpha_t.

d = (y - D(y; sigma)) / sigma is eps_hat, so Euler's y + (sigma' - sigma) d is DDIM's deterministic step; Heun
retakes it with eps_hat averaged over t and the Euler guess at t'. The last step, to sigma = 0, is Euler's: x0_hat.
"""

import math
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from difflab.diffusion.forward import renoise, timestep_for_noise
from difflab.diffusion.parameterization import x0_from_eps
from difflab.diffusion.schedules import alpha_sigma_at, karras_sigma
from difflab.errors import ConfigError
from difflab.sampling.base import SpacedSampler
from difflab.sampling.steps import ode_step, predict


@torch.no_grad()
def sample_heun(denoiser: Callable, x: torch.Tensor, timesteps: torch.Tensor, callback: Callable | None = None,
                progress: bool = False, clip_x0: bool = False, project: Callable | None = None, churn: float = 0.0,
                churn_range: tuple[float, float] = (0.0, math.inf), noise: Callable | None = None,
                temperature: float = 1.0) -> torch.Tensor:
    """Heun's method from x = x_{timesteps[0]} [N x C x H x W] -> x0 [N x C x H x W]: 2 network evaluations per
    step between grid points and 1 for the last (2M - 1 for M points). callback sees both evaluations of a step
    (i counts evaluations; the second is at t' on the Euler guess); project(t_next, x) after each full step.

    churn > 0 is Karras et al.'s stochastic sampler (Algorithm 2, S_churn): before each step from a point whose
    Karras sigma lies in churn_range (S_tmin, S_tmax), fresh noise (noise(shape) scaled by temperature) lifts x_t to
    the timestep t_hat nearest sigma (1 + gamma), gamma = min(churn / (M - 1), sqrt(2) - 1), and the step starts there.
    """
    abar = denoiser.alphas_cumprod.double().cpu()
    ts = [int(t) for t in timesteps]
    gamma = min(churn / max(len(ts) - 1, 1), 2**0.5 - 1)
    i = 0
    for k, t in enumerate(tqdm(ts, desc="heun", disable=not progress, leave=False)):
        sigma = float(karras_sigma(abar[t]))
        if gamma > 0 and k < len(ts) - 1 and churn_range[0] <= sigma <= churn_range[1]:
            t_hat = max(t, timestep_for_noise(abar, sigma * (1 + gamma)))
            if t_hat > t:
                z = temperature * noise(x.shape[1:], x.dtype)
                x, t = renoise(x, z, float(abar[t]), float(abar[t_hat])), t_hat
        x0, eps = predict(denoiser, x, t, abar, clip_x0)
        if callback is not None:
            callback(i, t, x, x0)
        i += 1
        if k == len(ts) - 1:
            return x0 if project is None else project(-1, x0)
        s = ts[k + 1]
        x_euler = ode_step(x, x0, abar, t, s)
        x0_euler, eps_euler = predict(denoiser, x_euler, s, abar, clip_x0)
        if callback is not None:
            callback(i, s, x_euler, x0_euler)
        i += 1
        eps_mean = (eps + eps_euler) / 2
        x0_mean = x0_from_eps(x, eps_mean, *alpha_sigma_at(abar, t))
        if clip_x0:  # the averaged eps implies x0_hat(t) - e^h (x0_hat(t) - x0_hat(t')) / 2: clamp it as well, or a
            x0_mean = x0_mean.clamp(-1, 1)  # big log-SNR step (the first, from ~pure noise) leaves the data range
        x = ode_step(x, x0_mean, abar, t, s)
        if project is not None:
            x = project(s, x)
    return x


@dataclass(frozen=True)
class Heun(SpacedSampler):
    """Heun's method (Karras et al. 2022): `steps` grid points (Karras' N), 2 steps - 1 network evaluations.

    churn (S_churn) > 0 makes it Karras' stochastic sampler (sample_heun), on Karras sigmas in
    [churn_sigma_min, churn_sigma_max] only (S_tmin, S_tmax; null = no bound)."""

    steps: int | None = 18
    churn: float = 0.0
    churn_sigma_min: float = 0.0
    churn_sigma_max: float | None = None
    solve = staticmethod(sample_heun)

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.churn, (int, float)) and self.churn >= 0):
            raise ConfigError(f"sampler.churn={self.churn} is invalid; allowed: a number >= 0 (0 = deterministic)")
        high = math.inf if self.churn_sigma_max is None else self.churn_sigma_max
        if not 0 <= self.churn_sigma_min <= high:
            raise ConfigError(f"sampler.churn_sigma_min={self.churn_sigma_min}, churn_sigma_max={self.churn_sigma_max} "
                              "are invalid; allowed: 0 <= churn_sigma_min <= churn_sigma_max (null = no bound)")

    def solver_options(self, noise, temperature) -> dict:
        if self.churn == 0:
            return {}
        high = math.inf if self.churn_sigma_max is None else self.churn_sigma_max
        return {"churn": self.churn, "churn_range": (self.churn_sigma_min, high), "noise": noise,
                "temperature": temperature}

    def nfe(self, T: int) -> int:
        return 2 * (self.steps or T) - 1
