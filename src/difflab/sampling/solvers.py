"""Fast deterministic samplers: solvers of the probability-flow ODE over a denoiser D(x_t, t) -> (x0_hat, eps_hat).

Both run on a grid of integer timesteps t_0 = start > ... > t_{M-1} = 0 (the network embeds integer t; grids.py)
and return x0_hat at t_{M-1}. No noise enters after the start: the temperature tau scales the initial x_T only.
Notation: abar_t the cumulative alphas, alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), lambda_t =
log(alpha_t / sigma_t); Karras' sigma = sigma_t / alpha_t and state y = x_t / alpha_t.

Each is DDIM's deterministic step (eta = 0) fed a better estimate than the denoiser's output at t alone:
  DPM-Solver++(2M)  (Lu et al. 2022, arXiv:2211.01095, Algorithm 2): the update x_{t_i} = (sigma_{t_i} /
                    sigma_{t_{i-1}}) x_{t_{i-1}} - alpha_{t_i} (e^{-h_i} - 1) D_i is DDIM's step from x0 = D_i, with
                    h_i = lambda_{t_i} - lambda_{t_{i-1}}, r_i = h_{i-1} / h_i and the multistep estimate
                    D_i = (1 + 1/(2 r_i)) x0_hat(t_{i-1}) - 1/(2 r_i) x0_hat(t_{i-2}) (x0_hat(t_0) on the first step).
  Heun              (Karras et al. 2022, arXiv:2206.00364, Algorithm 1, S_churn = 0): d = (y - D(y; sigma)) / sigma
                    is eps_hat, so Euler's y + (sigma' - sigma) d is DDIM's step; Heun retakes it with eps_hat
                    averaged over t and the Euler guess at t'. The last step, to sigma = 0, is Euler's: x0_hat.
"""

from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from difflab.diffusion.parameterization import eps_from_x0, x0_from_eps
from difflab.errors import ConfigError
from difflab.sampling.ancestral import ddim_step, predict
from difflab.sampling.grids import SPACING_NAMES, log_snr, timestep_grid
from difflab.sampling.samplers import _check_steps, _Sampler, check_start


def ode_step(x: torch.Tensor, x0: torch.Tensor, abar_t: float, abar_s: float) -> torch.Tensor:
    """DDIM's deterministic step t -> s from x_t and an estimate of x0 (eps follows from the two)."""
    eps = eps_from_x0(x, x0, abar_t**0.5, (1 - abar_t) ** 0.5)
    return ddim_step(x0, eps, abar_t, abar_s, eta=0.0, noise=None)


@torch.no_grad()
def sample_dpmpp_2m(denoiser: Callable, x: torch.Tensor, timesteps: torch.Tensor, callback: Callable | None = None,
                    progress: bool = False, clip_x0: bool = False, project: Callable | None = None,
                    eta: float = 0.0, noise: Callable | None = None, temperature: float = 1.0) -> torch.Tensor:
    """DPM-Solver++(2M) from x = x_{timesteps[0]} [N x C x H x W] -> x0 [N x C x H x W]: one network evaluation
    per grid point. callback(i, t, x_t, x0_hat) and project(t_next, x) as in ancestral.sample_reverse.
    eta > 0 takes the stochastic step instead (eta = 1: SDE-DPM-Solver++(2M), Lu et al. 2022, Sec. 5 / k-diffusion's
    midpoint form): DDPM's posterior step from the same multistep x0 estimate, with noise(shape) scaled by
    temperature injected."""
    abar = denoiser.alphas_cumprod.double().cpu()
    lam = log_snr(abar)
    ts = [int(t) for t in timesteps]
    x0_prev = None
    for i, t in enumerate(tqdm(ts, desc="dpm++(2m)", disable=not progress, leave=False)):
        x0, _ = predict(denoiser, x, t, abar, clip_x0)
        if callback is not None:
            callback(i, t, x, x0)
        if i == len(ts) - 1:
            return x0 if project is None else project(-1, x0)
        s = ts[i + 1]
        d = x0
        if x0_prev is not None:
            r = float((lam[t] - lam[ts[i - 1]]) / (lam[s] - lam[t]))
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        if eta == 0:
            x = ode_step(x, d, float(abar[t]), float(abar[s]))
        else:
            eps_d = eps_from_x0(x, d, abar[t].sqrt().item(), (1 - abar[t]).sqrt().item())
            x = ddim_step(d, eps_d, float(abar[t]), float(abar[s]), eta, noise, temperature)
        x0_prev = x0
        if project is not None:
            x = project(s, x)
    return x


@torch.no_grad()
def sample_heun(denoiser: Callable, x: torch.Tensor, timesteps: torch.Tensor, callback: Callable | None = None,
                progress: bool = False, clip_x0: bool = False, project: Callable | None = None) -> torch.Tensor:
    """Heun's method from x = x_{timesteps[0]} [N x C x H x W] -> x0 [N x C x H x W]: 2 network evaluations per
    step between grid points and 1 for the last (2M - 1 for M points). callback sees both evaluations of a step
    (i counts evaluations; the second is at t' on the Euler guess); project(t_next, x) after each full step."""
    abar = denoiser.alphas_cumprod.double().cpu()
    ts = [int(t) for t in timesteps]
    i = 0
    for k, t in enumerate(tqdm(ts, desc="heun", disable=not progress, leave=False)):
        x0, eps = predict(denoiser, x, t, abar, clip_x0)
        if callback is not None:
            callback(i, t, x, x0)
        i += 1
        if k == len(ts) - 1:
            return x0 if project is None else project(-1, x0)
        s = ts[k + 1]
        x_euler = ode_step(x, x0, float(abar[t]), float(abar[s]))
        x0_euler, eps_euler = predict(denoiser, x_euler, s, abar, clip_x0)
        if callback is not None:
            callback(i, s, x_euler, x0_euler)
        i += 1
        eps_mean = (eps + eps_euler) / 2
        x0_mean = x0_from_eps(x, eps_mean, abar[t].sqrt().item(), (1 - abar[t]).sqrt().item())
        x = ode_step(x, x0_mean, float(abar[t]), float(abar[s]))
        if project is not None:
            x = project(s, x)
    return x


@dataclass(frozen=True)
class _ODESampler(_Sampler):
    """The call interface of samplers.py over an ODE solver `solve`; `spacing` places the grid (grids.py).

    steps: grid points (null = all T timesteps); spacing: uniform | logsnr | karras. The default logsnr came
    closest to the closed form for Gaussian data on both the linear and cosine schedules (tests/sampling).
    """

    spacing: str = "logsnr"  # a plain str, not Literal: OmegaConf.structured (evaluate's report) takes no Literal

    def __post_init__(self):
        _check_steps(self.steps, " (or null for all)")
        if self.spacing not in SPACING_NAMES:
            raise ConfigError(f"sampler.spacing={self.spacing!r} is invalid; allowed: {', '.join(SPACING_NAMES)}")

    def timesteps(self, T: int, start: int | None = None, alphas_cumprod: torch.Tensor | None = None):
        """The grid from `start` (default T-1) down to 0: min(steps, start + 1) distinct points, [M] int64.
        alphas_cumprod [T] is needed by the logsnr and karras spacings."""
        self.check(T)
        start = T - 1 if start is None else check_start(start, T)
        return timestep_grid(self.spacing, min(self.steps or T, start + 1), start, alphas_cumprod)

    def __call__(self, denoiser, noise, shape, temperature=1.0, callback=None, progress=False, *,
                 x=None, start=None, project=None):
        """x0 [N x *shape]; temperature scales the initial noise only (nothing is injected later)."""
        timesteps = self.timesteps(denoiser.timesteps, start, denoiser.alphas_cumprod)
        x = temperature * noise(shape) if x is None else x
        return self.solve(denoiser, x, timesteps, callback=callback, progress=progress, clip_x0=self.clip_x0,
                          project=project, **self.solver_options(noise, temperature))

    def solver_options(self, noise, temperature) -> dict:
        return {}


@dataclass(frozen=True)
class DPMSolverPP2M(_ODESampler):
    """DPM-Solver++(2M) (Lu et al. 2022): `steps` grid points = network evaluations, as for DDIM."""

    steps: int | None = 20
    eta: float = 0.0  # 0 = the ODE solver; 1 = SDE-DPM-Solver++(2M), which injects noise like DDPM
    solve = staticmethod(sample_dpmpp_2m)

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.eta, (int, float)) and 0 <= self.eta <= 1):
            raise ConfigError(f"sampler.eta={self.eta} is invalid; allowed: 0 <= eta <= 1 (0 = ODE, 1 = SDE variant)")

    def solver_options(self, noise, temperature) -> dict:
        return {} if self.eta == 0 else {"eta": self.eta, "noise": noise, "temperature": temperature}


@dataclass(frozen=True)
class Heun(_ODESampler):
    """Heun's method (Karras et al. 2022): `steps` grid points (Karras' N), 2 steps - 1 network evaluations."""

    steps: int | None = 18
    solve = staticmethod(sample_heun)

    def nfe(self, T: int) -> int:
        return 2 * (self.steps or T) - 1
