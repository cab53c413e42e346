"""Stop, or skip the step, when a loss or gradient is not finite: before the optimizer spreads it into the weights,
their EMA and the checkpoints."""

import math

import torch
from lightning.pytorch.callbacks import Callback

from difflab.errors import ConfigError, RunError
from difflab.trainer import step_grad_norm

ACTIONS = ("stop", "skip")


class Divergence(Callback):
    """Checks each optimizer step's losses (every accumulated batch's) and gradients before the step is taken.
    `stop` raises a one-line RunError naming the step (its number as the loggers show it); `skip` drops the step's
    gradients, so the optimizer leaves every weight and its moments as they were, and logs train/skipped_steps;
    after `max_consecutive_skips` skipped steps in a row it stops as `stop` would, since then it is the weights (huge
    but finite) that go wrong, not a batch."""

    def __init__(self, on_nonfinite: str = "stop", max_consecutive_skips: int = 100):
        if on_nonfinite not in ACTIONS:
            raise ConfigError(f"callbacks.divergence.on_nonfinite={on_nonfinite} is not valid; allowed: "
                              f"{' | '.join(ACTIONS)}")
        if isinstance(max_consecutive_skips, bool) or not isinstance(max_consecutive_skips, int) \
                or max_consecutive_skips < 1:
            raise ConfigError(f"callbacks.divergence.max_consecutive_skips={max_consecutive_skips} is not valid; "
                              "allowed: an integer >= 1")
        self.on_nonfinite, self.max_consecutive_skips = on_nonfinite, max_consecutive_skips
        self.skipped = self.consecutive = 0
        self._losses: list[torch.Tensor] = []
        self._params: list[torch.Tensor] = []

    def on_fit_start(self, trainer, pl_module):
        self._params = list(pl_module.parameters())  # gathered once, not by walking the module at every step

    def on_before_backward(self, trainer, pl_module, loss):
        self._losses.append(loss.detach().float().reshape(-1))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        losses, self._losses = self._losses, []
        checks = [torch.cat(losses).isfinite().all()] if losses else []
        # Under float16's loss scaler an inf gradient is routine: the scaler skips that step and lowers its scale.
        scaled = getattr(trainer.precision_plugin, "scaler", None) is not None
        norm = None if scaled else step_grad_norm(trainer, self._params)
        if norm is not None:
            # The 2-norm, one fused foreach kernel (the max-norm's is several times slower on CPU), which the clipping
            # reuses: not finite for a nan or inf gradient, and for finite ones whose norm passes float32's range
            # (1.8e19), a divergence too.
            checks.append(norm.isfinite())
        if not checks or all(torch.stack(checks).tolist()):  # one device sync per step
            self.consecutive = 0
            return
        if self.on_nonfinite == "stop":
            raise RunError(f"training diverged at step {trainer.global_step}: {what_is_not_finite(losses)}; nothing "
                           "of this step was applied or saved. Lower optimizer.lr, clip gradients "
                           "(trainer.gradient_clip_val), or skip such steps: callbacks.divergence.on_nonfinite=skip")
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive_skips:
            raise RunError(f"training diverged at step {trainer.global_step}: {what_is_not_finite(losses)}, and the "
                           f"last {self.consecutive} steps were all skipped; lower optimizer.lr and resume from a "
                           "checkpoint before the first skipped step (train/skipped_steps)")
        for p in self._params:  # optimizers leave a parameter without a gradient untouched
            p.grad = None
        self.skipped += 1
        pl_module.log("train/skipped_steps", float(self.skipped))

    def state_dict(self) -> dict:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict) -> None:
        self.skipped = state_dict.get("skipped", 0)


def what_is_not_finite(losses: list[torch.Tensor]) -> str:
    bad = [v for v in torch.cat(losses).tolist() if not math.isfinite(v)] if losses else []
    if bad:
        return f"the loss is {bad[0]}"
    return "a gradient is not finite, or its norm is beyond 1.8e19 (the loss is finite)"
