"""Lightning's LearningRateMonitor, logging once per optimizer step."""

from lightning.pytorch.callbacks import LearningRateMonitor as _LearningRateMonitor

from difflab.callbacks.steps import ends_optimizer_step


class LearningRateMonitor(_LearningRateMonitor):
    """Lightning's LearningRateMonitor logs at the start of every batch, so N times per optimizer step (at one step
    number) with trainer.accumulate_grad_batches = N; this one logs at the start of each step's last batch only,
    the learning rate that step uses."""

    def on_train_batch_start(self, trainer, *args, **kwargs):
        if ends_optimizer_step(trainer):
            super().on_train_batch_start(trainer, *args, **kwargs)
