"""Keep the loss history (kept in checkpoints, so resumed runs plot the whole curve) and plot it as a PNG."""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402

from difflab.callbacks.steps import ends_optimizer_step  # noqa: E402


class LossCurve(Callback):
    """Records train/loss every optimizer step and val/loss after each validation; writes loss.png and loss.csv."""

    def __init__(self, dirpath, every_n_steps: int = 500):
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self._step_loss: float | None = None  # the optimizer step's batches so far

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:  # each batch's loss divided by accumulate_grad_batches: their sum is the step's loss
            self._step_loss = (self._step_loss or 0.0) + float(loss)
        if not ends_optimizer_step(trainer):
            return
        if self._step_loss is not None:
            self.train.append((trainer.global_step, self._step_loss))
            self._step_loss = None
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.write(trainer)

    def on_validation_end(self, trainer, pl_module):
        if "val/loss" in trainer.callback_metrics and not trainer.sanity_checking:
            self.val.append((trainer.global_step, float(trainer.callback_metrics["val/loss"])))

    def on_train_end(self, trainer, pl_module):
        self.write(trainer)

    def state_dict(self):
        return {"train": list(self.train), "val": list(self.val)}

    def load_state_dict(self, state_dict):
        self.train = [tuple(r) for r in state_dict["train"]]
        self.val = [tuple(r) for r in state_dict["val"]]

    def write(self, trainer) -> None:
        if not trainer.is_global_zero or not self.train:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with open(self.dirpath / "loss.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "split", "loss"])
            w.writerows([(s, "train", v) for s, v in self.train] + [(s, "val", v) for s, v in self.val])
        plot_losses(self.train, self.val, self.dirpath / "loss.png")


def plot_losses(train, val, path) -> None:
    steps, losses = zip(*train)
    smooth, acc = [], 0.0
    for k, v in enumerate(losses, 1):  # bias-corrected exponential smoothing over ~50 steps: the raw loss is
        acc = 0.98 * acc + 0.02 * v  # noisy because every step draws other timesteps
        smooth.append(acc / (1 - 0.98**k))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=0.8, label="train (per step)")
    ax.plot(steps, smooth, color="tab:blue", lw=1.8, label="train (smoothed)")
    if val:
        ax.plot(*zip(*val), "o-", color="tab:orange", label="val (EMA weights)")
    ax.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
