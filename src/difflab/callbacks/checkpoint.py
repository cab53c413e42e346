"""ModelCheckpoint whose last.ckpt always holds the final step of a run."""

from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint


class Checkpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, plus: when training ends between two periodic saves, last.ckpt is rewritten
    so that it holds the final weights (Lightning only writes it at train end if it was never written)."""

    def setup(self, trainer, pl_module, stage):
        super().setup(trainer, pl_module, stage)
        if trainer.is_global_zero and self.dirpath and Path(self.dirpath).is_dir():
            for stale in Path(self.dirpath).glob(".*.ckpt.*.tmp"):  # half-written files of a killed run
                stale.unlink(missing_ok=True)

    def on_train_end(self, trainer, pl_module):
        if self.save_last and self._last_global_step_saved != trainer.global_step and not trainer.fast_dev_run:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
