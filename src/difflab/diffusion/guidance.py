"""Classifier-free guidance (Ho & Salimans 2022, https://arxiv.org/abs/2207.12598) as a denoiser wrapper.

One network trained with labels dropped to the null class predicts both eps_c = eps(x_t, y) and
eps_u = eps(x_t, null). The guided prediction is

    eps_w = eps_u + w (eps_c - eps_u)

Convention: w weighs the conditional prediction, so w = 0 is the unconditional model, w = 1 the plain
conditional one and w > 1 extrapolates away from the unconditional (the convention of Saharia et al. 2022 and
of most code). Ho & Salimans write eps = (1 + w') eps_c - w' eps_u: their w' is our w - 1.

Samplers do not change: the wrapper has the Denoiser's interface, D(x_t, t) -> (x0_hat, eps_hat).
"""

import torch

from difflab.diffusion.denoiser import Denoiser


class GuidedDenoiser:
    """D_w(x_t, t) -> (x0_hat, eps_hat) guided towards labels y [N] with scale w (see the module docstring).

    Each call is one network pass over the batch [x_t; x_t] [2N x C x H x W] with labels [y; null_label], read
    through the objective like any Denoiser. x0_hat is combined with the same weights as eps_hat: at fixed x_t,
    x0 = (x_t - sigma eps) / alpha is affine in eps, so this is the x0 of the combined eps, without dividing by
    alpha ~ 0 at the noisiest steps and exactly the conditional (unconditional) denoiser at w = 1 (w = 0).
    """

    def __init__(self, net, schedule, objective, y: torch.Tensor, scale: float, null_label: int,
                 autocast_dtype: torch.dtype | None = None):
        self.scale = float(scale)
        self.denoiser = Denoiser(net, schedule, objective, y=torch.cat([y, torch.full_like(y, null_label)]),
                                 autocast_dtype=autocast_dtype)

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.denoiser.alphas_cumprod

    @property
    def timesteps(self) -> int:
        return self.denoiser.timesteps

    def __call__(self, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(t, device=x_t.device, dtype=torch.long).expand(x_t.shape[0])
        x0, eps = self.denoiser(torch.cat([x_t, x_t]), torch.cat([t, t]))
        (x0_c, x0_u), (eps_c, eps_u) = x0.chunk(2), eps.chunk(2)
        # lerp returns its end points exactly at weights 0 and 1
        return torch.lerp(x0_u, x0_c, self.scale), torch.lerp(eps_u, eps_c, self.scale)


def make_denoiser(net, schedule, objective, y: torch.Tensor | None = None,
                  guidance_scale: float | None = None, autocast_dtype: torch.dtype | None = None):
    """D(x_t, t) for labels y [N] (None = no label), guided with scale w towards y if `guidance_scale` is given
    (w = 0 unconditional, 1 conditional); the null label is the network's `num_classes`. `schedule` as
    Denoiser's: alphas_cumprod [T] or Levels."""
    if guidance_scale is None:
        return Denoiser(net, schedule, objective, y=y, autocast_dtype=autocast_dtype)
    return GuidedDenoiser(net, schedule, objective, y, guidance_scale, net.num_classes,
                          autocast_dtype=autocast_dtype)
