"""The adapter that joins network, schedule and objective: the only place that knows all three."""

import torch

from difflab.diffusion.schedules import alpha_sigma
from difflab.precision import autocast


class Denoiser:
    """D(x_t, t) -> (x0_hat, eps_hat) for integer timesteps t [N] (or one int for the whole batch).

    `y` (labels [N], optional) is passed to the network as `y=`; samplers never see it. With `autocast_dtype`
    (torch.bfloat16) the network alone runs under autocast; its output is read back in x_t's dtype.
    """

    def __init__(self, net, alphas_cumprod: torch.Tensor, objective, y: torch.Tensor | None = None,
                 autocast_dtype: torch.dtype | None = None):
        self.net = net
        self.alphas_cumprod = alphas_cumprod
        self.objective = objective
        self.y = y
        self.autocast_dtype = autocast_dtype

    @property
    def timesteps(self) -> int:
        return len(self.alphas_cumprod)

    def __call__(self, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(t, device=x_t.device, dtype=torch.long).expand(x_t.shape[0])
        with autocast(x_t.device, self.autocast_dtype):
            out = self.net(x_t, t) if self.y is None else self.net(x_t, t, y=self.y)
        out = out.to(x_t.dtype)
        alpha, sigma = alpha_sigma(self.alphas_cumprod, t, out)
        return self.objective.to_x0_eps(out, x_t, alpha, sigma)
