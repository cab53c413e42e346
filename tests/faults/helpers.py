"""Callbacks that inject a fault at a known optimizer step, given to a run as `+callbacks.<name>._target_=...`,
and a Hydra callback for sweeps whose jobs are killed."""

import os
import signal

import torch
from hydra.experimental.callback import Callback as HydraCallback
from lightning.pytorch.callbacks import Callback


class PoisonBatch(Callback):
    """Fill the images of the batches of optimizer step `step` with `value` (nan or inf)."""

    def __init__(self, step: int, value: float = float("nan")):
        self.step, self.value = step, value

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            batch[0].fill_(self.value)


class KillAt(Callback):
    """SIGKILL this process when optimizer step `step` starts: no exception, no hook, no status written."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class NoResultWait(HydraCallback):
    """submitit waits 15 s for the result file of a job that ended without one, for network filesystems where the
    file shows up late; on the tests' local disk it is there or never (submitit's own tests set the wait to 0).
    Given to a sweep as `+hydra.callbacks.no_result_wait._target_=tests.faults.helpers.NoResultWait`."""

    def on_multirun_start(self, config, **kwargs):
        from submitit.core.core import Job

        Job._results_timeout_s = 0


def all_finite(ckpt: dict) -> bool:
    return all(bool(v.isfinite().all()) for part in ("state_dict", "current_model_state")
               for v in ckpt[part].values() if torch.is_tensor(v) and v.is_floating_point())
