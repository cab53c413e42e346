"""Exponential moving average of the weights, on Lightning's WeightAveraging.

The averaged copy is what the checkpoint's `state_dict` holds (the raw weights go to `current_model_state`),
what validation runs on, and what sampling uses (`ema_module`). Unlike Lightning's WeightAveraging, the
training module keeps its raw weights when fit ends, so a checkpoint written then still resumes exactly.
"""

import itertools

import torch
from lightning.pytorch.callbacks import WeightAveraging

from difflab.errors import ConfigError


def ema_decay(num_averaged: torch.Tensor, decay: float, warmup: bool) -> torch.Tensor:
    """min(decay, (1 + n) / (10 + n)) with warm-up (as in TF's ExponentialMovingAverage with num_updates), else decay."""
    d = torch.as_tensor(decay, dtype=torch.float64)
    if warmup:
        n = num_averaged.double()
        d = torch.minimum(d, (1 + n) / (10 + n))
    return d


class EMA(WeightAveraging):
    """EMA with decay warm-up, updated every `every_n_steps` optimizer steps from `start_step` on."""

    def __init__(self, decay: float = 0.9999, warmup: bool = True, every_n_steps: int = 1, start_step: int = 0):
        if not 0 < decay < 1:
            raise ConfigError(f"callbacks.ema.decay={decay} is invalid; allowed: 0 < decay < 1 (e.g. 0.999)")
        if every_n_steps < 1 or start_step < 0:
            raise ConfigError("callbacks.ema.every_n_steps must be >= 1 and callbacks.ema.start_step >= 0")
        self.decay, self.warmup = decay, warmup
        self.every_n_steps, self.start_step = every_n_steps, start_step
        super().__init__(multi_avg_fn=self._average, use_buffers=True)
        self._groups = None  # (averaged model, [(averaged tensors, current tensors)] per device and dtype)

    def _average(self, averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor):
        """averaged <- d averaged + (1 - d) current, in place, for one device and dtype's tensors in one call."""
        if not averaged[0].is_floating_point():  # integer buffers (counters) follow the model
            torch._foreach_copy_(averaged, current)
            return
        torch._foreach_lerp_(averaged, current, 1 - float(ema_decay(num_averaged, self.decay, self.warmup)))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # WeightAveraging's step update, through `_update` instead of AveragedModel.update_parameters
        if trainer.global_step > self._latest_update_step and self.should_update(step_idx=trainer.global_step - 1):
            self._update(pl_module)
            self._latest_update_step = trainer.global_step

    def _update(self, pl_module) -> None:
        """AveragedModel.update_parameters (use_buffers=True) over tensor lists gathered at the first update of a
        fit: walking the module's parameters and buffers every step costs more than averaging them."""
        model = self._average_model
        if self._groups is None or self._groups[0] is not model:
            pairs = zip(itertools.chain(model.module.parameters(), model.module.buffers()),
                        itertools.chain(pl_module.parameters(), pl_module.buffers()))
            groups: dict = {}
            for averaged, current in pairs:
                lists = groups.setdefault((averaged.device, averaged.dtype), ([], []))
                lists[0].append(averaged.detach())
                lists[1].append(current.detach())
            self._groups = (model, list(groups.values()))
        for averaged, current in self._groups[1]:
            if model.n_averaged == 0:
                torch._foreach_copy_(averaged, current)
            else:
                self._average(averaged, current, model.n_averaged)
        model.n_averaged += 1

    def on_fit_end(self, trainer, pl_module):
        self._groups = None  # the next fit (or a device move) may hold other tensors
        super().on_fit_end(trainer, pl_module)

    def should_update(self, step_idx=None, epoch_idx=None) -> bool:
        return step_idx is not None and step_idx >= self.start_step and step_idx % self.every_n_steps == 0

    def on_train_end(self, trainer, pl_module):
        """Keep the raw weights in the module (WeightAveraging would overwrite them with the average)."""

    def averaged_module(self):
        """The averaged copy of the LightningModule (None before fit sets it up)."""
        return None if self._average_model is None else self._average_model.module


def ema_module(trainer, pl_module):
    """The EMA copy of `pl_module` if an EMA callback is running, else `pl_module` itself."""
    for cb in trainer.callbacks:
        if isinstance(cb, EMA) and cb.averaged_module() is not None:
            return cb.averaged_module()
    return pl_module
