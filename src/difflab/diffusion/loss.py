"""The training loss: a denoising score-matching term at a random timestep, as a function over the network."""

import torch

from difflab.diffusion.forward import diffuse
from difflab.diffusion.schedules import alpha_sigma


def diffusion_loss(net, alphas_cumprod: torch.Tensor, objective, x0: torch.Tensor, y: torch.Tensor | None,
                   generator: torch.Generator, *, label_dropout: float = 0.0, num_classes: int | None = None):
    """Per-image losses [N] and their timesteps [N] for images x0 [N x C x H x W] (Ho et al. 2020, Alg. 1).

    t ~ U{0..T-1} and eps ~ N(0, I) come from `generator`, in that order, then (class-conditional nets,
    num_classes set) the label-dropout draws: labels y [N] become the null class `num_classes` with probability
    `label_dropout` (classifier-free guidance training, Ho & Salimans 2022)."""
    n = x0.shape[0]
    t = torch.randint(0, len(alphas_cumprod), (n,), device=x0.device, generator=generator)
    eps = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
    alpha, sigma = alpha_sigma(alphas_cumprod, t, x0)
    x_t = diffuse(x0, eps, alpha, sigma)
    if num_classes is None:
        out = net(x_t, t)
    else:
        drop = torch.rand(n, device=x0.device, generator=generator) < label_dropout
        out = net(x_t, t, y=torch.where(drop, torch.full_like(y, num_classes), y))
    return objective.loss(out, x0, eps, alpha, sigma), t


def bucket_losses(losses: torch.Tensor, t: torch.Tensor, timesteps: int, buckets: int) -> dict[str, torch.Tensor]:
    """Mean of losses [N] per bucket of t [N] (`buckets` equal ranges of 0..timesteps-1), keyed 'loss_tLO-HI':
    which noise levels are hard. Empty buckets are left out."""
    edges = torch.linspace(0, timesteps, buckets + 1).long().tolist()
    out = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (t >= lo) & (t < hi)
        if mask.any():
            out[f"loss_t{lo:04d}-{hi - 1:04d}"] = losses[mask].mean()
    return out
