"""The adapter that joins network, schedule and objective: the only place that knows all three."""

import torch

from difflab.diffusion.schedules import alpha_sigma


class Denoiser:
    """D(x_t, t) -> (x0_hat, eps_hat) for integer timesteps t [N] (or one int for the whole batch).

    `y` (labels [N], optional) is passed to the network as `y=`; samplers never see it.
    """

    def __init__(self, net, alphas_cumprod: torch.Tensor, objective, y: torch.Tensor | None = None):
        self.net = net
        self.alphas_cumprod = alphas_cumprod
        self.objective = objective
        self.y = y

    @property
    def timesteps(self) -> int:
        return len(self.alphas_cumprod)

    def __call__(self, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(t, device=x_t.device, dtype=torch.long).expand(x_t.shape[0])
        out = self.net(x_t, t) if self.y is None else self.net(x_t, t, y=self.y)
        alpha, sigma = alpha_sigma(self.alphas_cumprod, t, out)
        return self.objective.to_x0_eps(out, x_t, alpha, sigma)
