"""train/grad_norm: the total 2-norm of the gradients each logged optimizer step is handed, before clipping."""

import torch
from lightning.pytorch.callbacks import Callback

from difflab.trainer import is_log_step, step_grad_norm


class GradNorm(Callback):
    """Logs train/grad_norm on the trainer's logging steps only (trainer.log_every_n_steps): the norm is one fused
    foreach kernel, but a read of every gradient all the same. Under float16's loss scaler Lightning calls this
    hook after unscaling, so the norm is the true gradient's."""

    def __init__(self):
        self._params: list[torch.Tensor] = []

    def on_fit_start(self, trainer, pl_module):
        self._params = list(pl_module.parameters())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if not is_log_step(trainer, trainer.global_step):
            return
        norm = step_grad_norm(trainer, self._params)
        if norm is not None:
            pl_module.log("train/grad_norm", norm)
