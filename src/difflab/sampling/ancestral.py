"""DDPM and DDIM as one reverse-process recursion over a denoiser D(x_t, t) -> (x0_hat, eps_hat).

Each step between consecutive timesteps t > s of a (possibly respaced) grid is DDIM's (steps.ddim_step): eta = 1
is DDPM's ancestral step, eta = 0 deterministic DDIM. The last step returns x0_hat. DDPM and DDIM are the
samplers over it that conf/sampler/{ddpm,ddim}.yaml instantiate (call interface: base.py).
"""

from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from difflab.errors import ConfigError
from difflab.sampling.base import Sampler
from difflab.sampling.steps import ddim_step, predict


@torch.no_grad()
def sample_reverse(
    denoiser: Callable,
    x: torch.Tensor,
    noise: Callable,
    timesteps: torch.Tensor,
    eta: float,
    temperature: float = 1.0,
    large_variance: bool = False,
    callback: Callable | None = None,
    progress: bool = False,
    clip_x0: bool = False,
    project: Callable | None = None,
) -> torch.Tensor:
    """Run the recursion from x = x_{timesteps[0]} [N x C x H x W]; returns x0 [N x C x H x W].

    noise(shape) gives [N x *shape] standard normal draws; callback(i, t, x_t, x0_hat) sees every step.
    project(t_next, x) -> x edits the state after every step, t_next = -1 for the returned x0: the hook through
    which conditioning (ILVR, inpainting) replaces what the observation fixes.
    clip_x0 clamps x0_hat to the data range [-1, 1] and re-derives eps_hat from it (Ho et al. 2020's sampler):
    at the noisiest steps x0_hat = (x_t - sigma eps_hat) / alpha divides the network's error by alpha ~ 0.
    """
    abar = denoiser.alphas_cumprod.double().cpu()
    ts = [int(t) for t in timesteps]
    for i, t in enumerate(tqdm(ts, desc="sampling", disable=not progress, leave=False)):
        x0, eps = predict(denoiser, x, t, abar, clip_x0)
        if callback is not None:
            callback(i, t, x, x0)
        if i == len(ts) - 1:
            return x0 if project is None else project(-1, x0)
        x = ddim_step(x0, eps, float(abar[t]), float(abar[ts[i + 1]]), eta, noise, temperature, large_variance)
        if project is not None:
            x = project(ts[i + 1], x)
    return x


@dataclass(frozen=True)
class DDPM(Sampler):
    """Ancestral sampling (Ho et al. 2020); steps=None runs all T steps, fewer are respaced."""

    variance: str = "posterior"
    solve = staticmethod(sample_reverse)

    def __post_init__(self):
        super().__post_init__()
        if self.variance not in ("posterior", "beta"):
            raise ConfigError(f"sampler.variance={self.variance!r} is invalid; allowed: posterior, beta")

    def solver_options(self, noise, temperature) -> dict:
        return {"noise": noise, "temperature": temperature, "eta": 1.0, "large_variance": self.variance == "beta"}


@dataclass(frozen=True)
class DDIM(Sampler):
    """DDIM (Song et al. 2021): deterministic at eta = 0, DDPM-like at eta = 1."""

    steps: int | None = 50
    eta: float = 0.0
    solve = staticmethod(sample_reverse)

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.eta:
            raise ConfigError(f"sampler.eta={self.eta} is invalid; allowed: eta >= 0 (0 = deterministic, 1 = DDPM)")

    def solver_options(self, noise, temperature) -> dict:
        return {"noise": noise, "temperature": temperature, "eta": self.eta}
