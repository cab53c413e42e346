"""The training loss: a denoising score-matching term at a random timestep, as a function over the network."""

import torch

from difflab.diffusion.forward import diffuse


def diffusion_loss(net, process, objective, x0: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator, *,
                   label_dropout: float = 0.0, num_classes: int | None = None):
    """Per-image losses [N] and their times [N] for images x0 [N x C x H x W] (Ho et al. 2020, Alg. 1; Karras et
    al. 2022, Sec. 5 for a continuous process: net(c_in x_t, c_noise(t))).

    t from process.sample_t (T levels: U{0..T-1}) and eps ~ N(0, I) come from `generator`, in that order, then
    (class-conditional nets, num_classes set) the label-dropout draws: labels y [N] become the null class
    `num_classes` with probability `label_dropout` (classifier-free guidance training, Ho & Salimans 2022)."""
    n = x0.shape[0]
    t = process.sample_t(n, generator, x0.device)
    eps = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
    shape = (-1,) + (1,) * (x0.ndim - 1)
    alpha, sigma = (v.reshape(shape).to(x0.dtype) for v in process.alpha_sigma(t))
    x_t = diffuse(x0, eps, alpha, sigma)
    x_in = x_t * process.c_in(t).reshape(shape).to(x0.dtype)
    c_noise = process.c_noise(t)
    if num_classes is None:
        out = net(x_in, c_noise)
    else:
        drop = torch.rand(n, device=x0.device, generator=generator) < label_dropout
        out = net(x_in, c_noise, y=torch.where(drop, torch.full_like(y, num_classes), y))
    return objective.loss(out, x0, eps, alpha, sigma), t


def bucket_losses(losses: torch.Tensor, t: torch.Tensor, process, buckets: int) -> dict[str, torch.Tensor]:
    """Mean of losses [N] per bucket of t [N], keyed by the bucket's range: which noise levels are hard. T levels:
    `buckets` equal ranges of 0..T-1, 'loss_tLO-HI'; a continuous process: equal ranges of process.fraction(t) in
    [0, 1], 'loss_tLO-HI' with LO, HI to two decimals. Empty buckets are left out."""
    if process.timesteps is not None:
        edges = torch.linspace(0, process.timesteps, buckets + 1).long().tolist()
        names = [f"loss_t{lo:04d}-{hi - 1:04d}" for lo, hi in zip(edges[:-1], edges[1:])]
        where = t
    else:
        edges = torch.linspace(0, 1, buckets + 1).tolist()
        edges[-1] = float("inf")  # the noisiest end belongs to the last bucket
        names = [f"loss_t{lo:.2f}-{min(hi, 1):.2f}" for lo, hi in zip(edges[:-1], edges[1:])]
        where = process.fraction(t)
    out = {}
    for name, lo, hi in zip(names, edges[:-1], edges[1:]):
        mask = (where >= lo) & (where < hi)
        if mask.any():
            out[name] = losses[mask].mean()
    return out


class StepLosses:
    """The per-sample losses [N] and times [N] of one optimizer step's batches so far (gradient accumulation):
    loggers keep the last value logged in a step, which is then the mean over all of its batches, not the last's."""

    def __init__(self, process, buckets: int):
        self.process, self.buckets = process, buckets
        self.parts: list[tuple[torch.Tensor, torch.Tensor]] = []

    def add(self, losses: torch.Tensor, t: torch.Tensor, first: bool) -> torch.Tensor:
        """Add a batch's losses [n] and times [n] (`first`: it starts a step); the step's losses so far."""
        if first:
            self.parts = []
        self.parts.append((losses, t))
        return torch.cat([part[0] for part in self.parts])

    def bucketed(self) -> dict[str, torch.Tensor]:
        """bucket_losses of the step's batches so far."""
        losses, t = (torch.cat(parts) for parts in zip(*self.parts))
        return bucket_losses(losses, t, self.process, self.buckets)
