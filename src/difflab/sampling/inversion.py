"""DDIM inversion: deterministic encoding of images x0 into codes x_T, and the decoder that maps codes back.

The decoder is deterministic DDIM (eta = 0, no clamping of x0_hat) on the grid of `DDIM(steps)`, from timestep
`start` (default T-1) down to 0, whose last step returns x0_hat. With abar = 1 for the clean image, one decoding
step from a level n to the less noisy level c reads

    x_c = sqrt(abar_c) x0_hat(x_n) + sqrt(1 - abar_c) eps_hat(x_n)        (Song et al. 2021, arXiv:2010.02502, eq. 12)

Inverting it means solving for x_n given x_c. Plain DDIM inversion (Song et al. 2021, Sec. 4.3; Dhariwal & Nichol
2021, arXiv:2105.05233) replaces eps_hat(x_n) by eps_hat(x_c), read at x_c's own timestep (at the first level's for
the clean image, which has none); its round trip does not return the input. `exact_invert` solves the equation
by the fixed-point iteration x_n <- sqrt(abar_n) x0(x_c, eps_hat(x_n)) + sqrt(1 - abar_n) eps_hat(x_n), where
x0(x_c, eps) = (x_c - sqrt(1 - abar_c) eps) / sqrt(abar_c), started from the plain guess and sped up by Anderson
acceleration (as in AIDI, Pan et al. 2023, arXiv:2309.04907; EDICT, Wallace et al. 2023, is an exact alternative
that doubles the state).

Stability: the decoder is DDIM without clamping. From T-1 on the cosine schedule (abar_{T-1} ~ 2e-9 once betas are
clipped at 0.999) its first step multiplies the network's eps error by alpha_next / alpha_{T-1} (~700 at 50 steps)
and diverges even from pure noise; with a trained network invert to a smaller `start` there.
Precision: everything runs in x0's dtype; pass float64 images to a float64 model for closed-form checks (float32
networks reach relative residuals of about 1e-5 to 1e-3 at the least noisy levels).
"""

import warnings
from typing import Callable

import torch
from tqdm.auto import tqdm

from difflab.diffusion.forward import diffuse
from difflab.diffusion.parameterization import x0_from_eps
from difflab.diffusion.schedules import alpha_sigma_at
from difflab.errors import ConfigError
from difflab.sampling.ancestral import DDIM

_CLEAN = (1.0, 0.0)  # (alpha, sigma) of the clean image, abar = 1: the level the inversion starts from


def _decoder(denoiser, x: torch.Tensor, steps, start, what: str) -> DDIM:
    """The DDIM sampler the codes belong to, after checking the arguments (ConfigError names what is allowed)."""
    T = denoiser.timesteps
    if not (isinstance(steps, int) and not isinstance(steps, bool) and 1 <= steps <= T):
        raise ConfigError(f"steps={steps!r} is invalid; allowed: an integer from 1 to the schedule's T={T}")
    if start is not None and not (isinstance(start, int) and not isinstance(start, bool) and 0 <= start < T):
        raise ConfigError(f"start={start!r} is invalid; allowed: None (T-1) or an integer timestep from 0 to {T - 1}")
    if x.ndim != 4:
        raise ConfigError(f"{what} has shape {tuple(x.shape)}; allowed: a batch of images [N x C x H x W]")
    return DDIM(steps=steps, clip_x0=False)  # clamping x0_hat would make the decoder non-invertible


def _levels(denoiser, x0, steps, start) -> list[tuple[int, tuple[float, float]]]:
    """(t, (alpha_t, sigma_t)) of the decoder's grid from the least noisy (t = 0) to `start`: the inversion's order."""
    timesteps = _decoder(denoiser, x0, steps, start, "x0").timesteps(denoiser.timesteps, start)
    abar = denoiser.alphas_cumprod.double().cpu()
    return [(int(t), alpha_sigma_at(abar, int(t))) for t in timesteps.flip(0)]


def _renoise(x: torch.Tensor, eps: torch.Tensor, level_x: tuple, level_next: tuple) -> torch.Tensor:
    """The state at level_next that shares eps and the implied x0 with x at level_x; a level is (alpha, sigma)."""
    return diffuse(x0_from_eps(x, eps, *level_x), eps, *level_next)


@torch.no_grad()
def ddim_invert(denoiser: Callable, x0: torch.Tensor, steps: int, *, start: int | None = None,
                progress: bool = False) -> torch.Tensor:
    """Plain DDIM inversion of images x0 [N x C x H x W] to codes x_start [N x C x H x W]; `steps` evaluations."""
    levels = _levels(denoiser, x0, steps, start)
    x, level_x, t_x = x0, _CLEAN, levels[0][0]  # the clean image has no timestep: its eps is read at the first level
    for t, level in tqdm(levels, desc="inverting", disable=not progress, leave=False):
        eps = denoiser(x, t_x)[1]
        x, level_x, t_x = _renoise(x, eps, level_x, level), level, t
    return x


@torch.no_grad()
def exact_invert(denoiser: Callable, x0: torch.Tensor, steps: int, *, iterations: int = 50, tol: float = 1e-5,
                 start: int | None = None, progress: bool = False, info: dict | None = None) -> torch.Tensor:
    """Codes x_start [N x C x H x W] that `ddim_decode` maps back to x0 [N x C x H x W] up to `tol`.

    Each level is solved to a relative residual |decoded - x_c| / |x_c| <= tol (per image, the worst of the batch)
    or for `iterations` evaluations. `info`, if given, receives `residual` (the worst over levels), `residuals`
    (per level, least noisy first) and `nfe`; a RuntimeWarning says when some level stopped above tol.
    """
    if not (isinstance(iterations, int) and not isinstance(iterations, bool) and iterations >= 1):
        raise ConfigError(f"iterations={iterations!r} is invalid; allowed: an integer >= 1")
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ConfigError(f"tol={tol!r} is invalid; allowed: a number > 0 (a relative residual, e.g. 1e-5)")
    levels = _levels(denoiser, x0, steps, start)
    x, level_x = x0, _CLEAN
    eps = denoiser(x0, levels[0][0])[1]
    residuals, nfe = [], 1
    for t, level in tqdm(levels, desc="inverting", disable=not progress, leave=False):
        target, previous = x, None
        x = _renoise(target, eps, level_x, level)  # the plain DDIM guess: eps read at the current point
        for i in range(iterations):
            x0_hat, eps = denoiser(x, t)
            decoded = diffuse(x0_hat, eps, *level_x)  # the decoder's step back: DDIM at eta = 0
            residual = _relative_error(decoded, target)
            nfe += 1
            if residual <= tol or i == iterations - 1:
                break
            fx = _renoise(target, eps, level_x, level)
            x, previous = fx if previous is None else _anderson(x, fx, *previous), (x, fx)
        residuals.append(residual)
        level_x = level
    worst = max(residuals)
    if worst > tol:
        warnings.warn(f"exact_invert: worst relative residual {worst:.2e} > tol={tol:g} after {iterations} "
                      "iterations per level; raise iterations or steps for an exact round trip", RuntimeWarning)
    if info is not None:
        info.update(residual=worst, residuals=residuals, nfe=nfe)
    return x


def _anderson(x: torch.Tensor, fx: torch.Tensor, x_prev: torch.Tensor, fx_prev: torch.Tensor) -> torch.Tensor:
    """Anderson acceleration with memory 1 (Walker & Ni 2011, SIAM J. Numer. Anal. 49(4)) of x <- F(x), per image:
    the mix of the last two updates whose residual F(x) - x, linearised, is smallest [N x C x H x W].

    The plain iteration stalls where its map barely contracts (the top steps of the cosine schedule, where
    alpha_next / alpha_cur << 1); on an affine map with one slow rate this step lands on the fixed point."""
    f, df = (fx - x).flatten(1), (fx - x - fx_prev + x_prev).flatten(1)
    gamma = (df * f).sum(1) / (df * df).sum(1).clamp_min(torch.finfo(x.dtype).tiny)
    return fx - gamma.view(-1, *[1] * (x.ndim - 1)) * (fx - fx_prev)


def _relative_error(x: torch.Tensor, target: torch.Tensor) -> float:
    """max over the batch of |x - target| / |target| (Euclidean norms per image)."""
    norm = target.flatten(1).norm(dim=1).clamp_min(torch.finfo(target.dtype).tiny)
    return float(((x - target).flatten(1).norm(dim=1) / norm).max())


def ddim_decode(denoiser: Callable, x_T: torch.Tensor, steps: int, *, start: int | None = None,
                progress: bool = False) -> torch.Tensor:
    """Deterministic DDIM (eta = 0, unclamped) from codes x_start [N x C x H x W] to images [N x C x H x W]."""
    sampler = _decoder(denoiser, x_T, steps, start, "x_T")
    return sampler(denoiser, None, x_T.shape[1:], progress=progress, x=x_T, start=start)
