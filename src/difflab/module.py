"""DiffusionModule: the LightningModule that trains a denoiser and samples from it."""

from functools import partial

import lightning as L
import torch

from difflab.compile import compile_mode
from difflab.diffusion.denoiser import level_table
from difflab.diffusion.loss import StepLosses, diffusion_loss
from difflab.errors import ConfigError
from difflab.precision import autocast_dtype, clip_unscaled
from difflab.sampling import DDIM
from difflab.sampling.model import SamplingMixin
from difflab.sampling.noise import keyed_generator
from difflab.trainer import clear_step_grad_norm, is_log_step, micro_batch, step_grad_norm


class DiffusionModule(SamplingMixin, L.LightningModule):
    """Trains a network `net(x_t, t, y=None)` with diffusion_loss over a schedule and an objective; samples from it
    through SamplingMixin (denoiser, sampling_schedule, sample). `optimizer` / `lr_scheduler` are partials (Hydra
    `_partial_: true`); `precision`
    (resolved, e.g. 'bf16-mixed') is what sampling computes the network in (training's autocast is the Trainer's).
    """

    def __init__(self, net: torch.nn.Module, schedule, objective, image_shape, sampler=None, optimizer=None,
                 lr_scheduler=None, label_dropout: float = 0.0, seed: int = 0, loss_buckets: int = 10,
                 run_config: dict | None = None, precision: str = "32-true", channels_last: bool = False,
                 compile: str | bool | None = None):
        super().__init__()
        # logger=False: train() sends the full config to the loggers itself (once, at top level)
        self.save_hyperparameters(ignore=["net", "schedule", "objective", "sampler", "optimizer", "lr_scheduler"],
                                  logger=False)
        if not 0 <= label_dropout < 1:
            raise ConfigError(f"module.label_dropout={label_dropout} is invalid; allowed: 0 <= p < 1")
        self.compile_mode = compile_mode(compile, "module.compile")
        objective.check(schedule)
        self.net, self.schedule, self.objective = net, schedule, objective
        # the levels applications and bits/dim index; generation reads a continuous process at its sampler's grid
        self.levels = level_table(schedule)
        self.alphas_cumprod = self.levels if schedule.timesteps is not None else self.levels.alphas_cumprod
        self.image_shape = tuple(int(s) for s in image_shape)
        self.sampler = sampler if sampler is not None else DDIM(steps=min(50, self.timesteps))
        self.optimizer = optimizer or partial(torch.optim.AdamW, lr=2e-4)
        self.lr_scheduler = lr_scheduler
        self.label_dropout, self.seed, self.loss_buckets = label_dropout, seed, loss_buckets
        self.autocast_dtype = autocast_dtype(precision)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self._step_losses = StepLosses(schedule, loss_buckets)

    @classmethod
    def from_pretrained(cls, path, precision: str = "auto", device="cpu") -> "DiffusionModule":
        """The module a folder written by src/export.py holds (config + safetensors weights, no pickle), for
        inference on `device`; a training checkpoint (.ckpt) loads too. As build.module_from_checkpoint."""
        from difflab.build import module_from_checkpoint  # build imports this module

        return module_from_checkpoint(path, key="path", precision=precision, device=device)

    @property
    def timesteps(self) -> int:
        """T of a discrete schedule; a continuous process's level_table has LEVELS levels."""
        return len(self.alphas_cumprod)

    @property
    def num_classes(self):
        return getattr(self.net, "num_classes", None)

    # ---- training -------------------------------------------------------------------------------------------
    def losses(self, x0: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator):
        """Per-sample losses [N] and their timesteps [N] at random t and eps drawn from `generator`."""
        x0 = x0.contiguous(memory_format=self.memory_format)
        return diffusion_loss(self.net, self.schedule, self.objective, x0, y, generator,
                              label_dropout=self.label_dropout, num_classes=self.num_classes)

    def on_fit_start(self):
        # After the EMA callback has copied the module (which stays eager); in place, so state-dict keys stay; fixed
        # shapes, as symbolic ones fail to lower the U-Net in torch 2.14's inductor.
        if self.compile_mode is not None:
            self.net.compile(mode=self.compile_mode, dynamic=False)

    def on_after_backward(self):
        clear_step_grad_norm(self.trainer)  # the gradients changed

    def training_step(self, batch, batch_idx):
        x0, y = batch
        batch_place = micro_batch(self._trainer, batch_idx)
        g = keyed_generator(self.seed, batch_place.key(self.global_step), self.global_rank, device=self.device)
        losses, t = self.losses(x0, y, g)
        step_losses = self._step_losses.add(losses.detach(), t, first=batch_place.first)
        # on the loggers' steps only (the progress bar's loss refreshes there): a self.log call costs ~1 ms of Python
        if batch_place.last and is_log_step(self._trainer, self.global_step):
            self.log("train/loss", step_losses.mean(), prog_bar=True, batch_size=len(step_losses))
            if self.loss_buckets:
                self.log_dict({f"train_t/{name}": value for name, value in self._step_losses.bucketed().items()})
        return losses.mean() * batch_place.weight

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        params = list(self.parameters())
        if not clip_unscaled(params, self.trainer.precision, gradient_clip_val, gradient_clip_algorithm,
                             lambda: step_grad_norm(self.trainer, params)):
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def validation_step(self, batch, batch_idx):
        x0, y = batch
        g = keyed_generator(self.seed, 1 << 40, batch_idx, self.global_rank, device=self.device)
        losses, _ = self.losses(x0, y, g)
        self.log("val/loss", losses.mean(), prog_bar=True, sync_dist=True, batch_size=x0.shape[0])

    def configure_optimizers(self):
        optimizer = self.optimizer(self.parameters())
        if self.lr_scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.lr_scheduler(optimizer), "interval": "step"}}
