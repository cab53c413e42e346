"""Timestep grids for the samplers: `steps` distinct integer timesteps from `start` down to 0.

The network embeds integer t, so spacings defined on continuous noise levels are walked over the integers:
  uniform   evenly in t (DDPM/DDIM's grid, `respaced_timesteps`);
  logsnr    evenly in lambda_t = log(alpha_t / sigma_t) (Lu et al. 2022, arXiv:2206.00927, Sec. 3.3);
  karras    evenly in sigma^(1/rho), sigma = sigma_t / alpha_t = exp(-lambda_t), rho = 7 (Karras et al. 2022,
            arXiv:2206.00364, eq. 5).
For logsnr and karras each next point is the first step of the spacing laid afresh from the current point to t = 0
with the points still to place, moved to the integer timestep nearest in lambda. Where lambda jumps between
neighbouring integers (the clipped last betas of the cosine schedule) the grid thus re-spreads its remaining points
instead of merging them, and always has exactly `steps` points, so `nfe` stays exact.
"""

import math

import torch

KARRAS_RHO = 7.0  # Karras et al. 2022, eq. 5: rho = 7 shortens steps near sigma_min, where errors are largest


def respaced_timesteps(timesteps: int, steps: int) -> torch.Tensor:
    """`steps` integer timesteps evenly spread from T-1 down to 0, [steps] int64, strictly decreasing."""
    return torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).round().long()


def log_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """lambda_t = log(alpha_t / sigma_t) = log(abar_t / (1 - abar_t)) / 2: [T] float64, decreasing in t."""
    abar = alphas_cumprod.double().cpu()
    return 0.5 * (torch.log(abar) - torch.log1p(-abar))


def logsnr_next(lam: float, lam_end: float, intervals: int) -> float:
    """The next of `intervals` equal steps in lambda from lam to lam_end."""
    return lam + (lam_end - lam) / intervals


def karras_next(lam: float, lam_end: float, intervals: int, rho: float = KARRAS_RHO) -> float:
    """The next of `intervals` equal steps in sigma^(1/rho) from sigma = exp(-lam) to exp(-lam_end), as a lambda."""
    root, root_end = math.exp(-lam / rho), math.exp(-lam_end / rho)
    return -rho * math.log(root + (root_end - root) / intervals)


SPACINGS = {"logsnr": logsnr_next, "karras": karras_next}
SPACING_NAMES = ("uniform", *SPACINGS)


def timestep_grid(spacing: str, steps: int, start: int, alphas_cumprod: torch.Tensor | None = None) -> torch.Tensor:
    """`steps` distinct integer timesteps from `start` down to 0 (1 <= steps <= start + 1): [steps] int64, decreasing.

    alphas_cumprod [T] (float64) is needed for every spacing but `uniform`.
    """
    if spacing == "uniform":
        return respaced_timesteps(start + 1, steps)
    if alphas_cumprod is None:
        raise ValueError(f"spacing={spacing} places timesteps by log-SNR: pass the schedule's alphas_cumprod")
    lam = log_snr(alphas_cumprod)
    ts = [start]
    for k in range(1, steps):
        left = steps - k  # points still to place, this one included; the others need the integers below it
        target = SPACINGS[spacing](float(lam[ts[-1]]), float(lam[0]), left)
        candidates = lam[left - 1 : ts[-1]]
        ts.append(left - 1 + int((candidates - target).abs().argmin()))
    return torch.tensor(ts, dtype=torch.long)
