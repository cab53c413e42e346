"""Lightning's Trainer with `precision='auto'`: bf16 autocast where the device has bf16 units, else float32."""

from typing import Literal

import lightning as L
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
