"""Lightning's Trainer with `precision='auto'`: bf16 autocast where the device has bf16 units, else float32."""

from typing import Literal, NamedTuple

import lightning as L
import torch
from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT

from difflab.errors import ConfigError
from difflab.precision import choose_precision, resolve_precision


class Trainer(L.Trainer):
    """`lightning.pytorch.Trainer` whose precision also takes 'auto' (difflab.precision), resolved for the
    accelerator and said in the log before anything runs. Every other argument is the Trainer's own;
    accumulate_grad_batches is checked here so that a bad value is one line naming the key."""

    def __init__(self, *args, precision: Literal["auto"] | _PRECISION_INPUT | None = "auto",
                 accumulate_grad_batches: int = 1, **kwargs):
        if isinstance(accumulate_grad_batches, bool) or not isinstance(accumulate_grad_batches, int) \
                or accumulate_grad_batches < 1:
            raise ConfigError(f"trainer.accumulate_grad_batches={accumulate_grad_batches} is not valid; allowed: an "
                              "integer >= 1 (batches of data.batch_size per optimizer step; 1 = no accumulation)")
        accelerator = kwargs.get("accelerator", "auto")
        if str(precision) == "auto":
            precision = choose_precision(precision, accelerator)
        else:  # train() has said it already; the device checks still hold
            precision = resolve_precision(precision, accelerator)[0]
        super().__init__(*args, precision=precision, accumulate_grad_batches=accumulate_grad_batches, **kwargs)


class MicroBatch(NamedTuple):
    """A training batch's place in its optimizer step (gradient accumulation)."""

    index: int  # within the step
    accumulate: int  # trainer.accumulate_grad_batches
    size: int  # batches in the step: accumulate, or fewer at an epoch's end

    @property
    def first(self) -> bool:
        return self.index == 0

    @property
    def last(self) -> bool:
        return self.index == self.size - 1

    def key(self, global_step: int) -> int:
        """The batch's place in the run, for its random draws: the batches one step accumulates each draw their own
        t and eps; without accumulation the key is the global step."""
        return global_step * self.accumulate + self.index

    @property
    def weight(self) -> float:
        """What the batch's mean loss is multiplied by: Lightning divides every batch's loss by `accumulate`, and a
        step of fewer batches must still average its losses, not under-weight them."""
        return self.accumulate / self.size if self.size < self.accumulate else 1.0


def micro_batch(trainer: L.Trainer | None, batch_idx: int) -> MicroBatch:
    """Where training batch `batch_idx` lies in its optimizer step; no trainer: MicroBatch(0, 1, 1).

    Lightning starts a step at each multiple of accumulate_grad_batches within the epoch (batch_idx counts from the
    epoch's start, also after a mid-epoch resume) and steps early at the epoch's last batch."""
    if trainer is None:
        return MicroBatch(0, 1, 1)
    accumulate = trainer.accumulate_grad_batches
    index = batch_idx % accumulate
    return MicroBatch(index, accumulate, int(min(accumulate, trainer.num_training_batches - (batch_idx - index))))


def is_log_step(trainer: L.Trainer | None, global_step: int) -> bool:
    """Whether optimizer step `global_step` (0-based) is one the trainer logs at (every log_every_n_steps), or the
    run's last by trainer.max_steps (so that a run's final metrics hold its last step's)."""
    return trainer is not None and ((global_step + 1) % max(1, trainer.log_every_n_steps) == 0
                                    or global_step + 1 == trainer.max_steps)


def step_grad_norm(trainer, params) -> torch.Tensor | None:
    """The total 2-norm of the gradients the current optimizer step is handed (None if there are none): one fused
    foreach kernel, computed once per step for every caller (the divergence check, GradNorm, the clipping), which
    all read it between the step's last backward and the optimizer. Kept on the trainer, keyed by its global step;
    DiffusionModule clears it after every backward (clear_step_grad_norm)."""
    cached = getattr(trainer, "_difflab_grad_norm", None)
    if cached is not None and cached[0] == trainer.global_step:
        return cached[1]
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads, norm_type=2, foreach=True) if grads else None
    trainer._difflab_grad_norm = (trainer.global_step, norm)
    return norm


def clear_step_grad_norm(trainer) -> None:
    """Forget step_grad_norm's value: the gradients changed (a backward ran)."""
    trainer._difflab_grad_norm = None

