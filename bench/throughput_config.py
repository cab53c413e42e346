"""What bench/throughput.py asks of difflab's configs: the composed train config, and the overrides that differ
from a user's run, all in this one file so that switching to `trainer.precision=auto` is a one-line change."""

from pathlib import Path

from hydra import compose, initialize_config_dir

from difflab.data.fashion_mnist import DEBIAN_DIR, find_files

CONF = Path(__file__).resolve().parent.parent / "conf"

# Rows of every table: the bench's name -> difflab's trainer.precision, and the autocast dtype that the bare and
# diffusers loops use for the same row (None = plain fp32). When conf/trainer gets `precision: auto`, a row
# {"auto": "auto"} is what the framework would pick; the peers then need the dtype auto resolves to.
PRECISIONS = {"fp32": ("32", None), "bf16": ("bf16-mixed", "bfloat16")}

# The Lightning run is the default run except for these: nothing periodic that is not a training step (sample
# grids, trajectories, evaluation, final samples), no progress bar (stdout) or model summary (printed at start).
# EMA, checkpoint, throughput monitor, lr monitor, loss curve and the CSV logger stay as configured.
LIGHTNING_OFF = [
    "callbacks.sample_grid.every_n_steps=0",
    "callbacks.trajectory.every_n_steps=0",
    "callbacks.evaluation.every_n_epochs=0",
    "final_samples=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def fashion_available() -> bool:
    return find_files(Path(DEBIAN_DIR)) is not None


def data_overrides(size: int) -> list[str]:
    """The data set a size stands for: digits at 8, Fashion-MNIST at 28 (digits upsampled if its files are
    missing: the speed does not depend on what the images show), CIFAR-10 (3 channels) at 32 for the nets only."""
    if size == 8:
        return ["data=digits"]
    if size == 28:
        return ["data=fashion_mnist", "data.num_workers=0"] if fashion_available() else \
            ["data=digits", "data.image_size=28"]
    return ["data=cifar10", f"data.image_size={size}"]


def compose_train(*overrides: str, output_dir: str = "/tmp/difflab-bench"):
    """conf/train.yaml composed with `overrides`, as `python src/train.py ...` would (no Hydra run dir)."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={output_dir}", *overrides])


def timer_overrides(folder: str) -> list[str]:
    """Append throughput_measure.StepTimer to the configured callbacks; it writes folder/steps.json."""
    return ["+callbacks.bench_timer._target_=throughput_measure.StepTimer",
            f"+callbacks.bench_timer.path={folder}/steps.json"]


def lightning_overrides(cfg_trainer, precision: str, *, device: str, steps: int | None = None,
                        max_time_s: float | None = None) -> list[str]:
    """trainer.* overrides for a timed Lightning run: precision, accelerator, max_steps and max_time.

    `trainer.max_time` is taken as new (`+`) while conf/trainer/default.yaml has no such key."""
    out = [f"trainer.precision={PRECISIONS[precision][0]}",
           f"trainer.accelerator={'gpu' if device.startswith('cuda') else 'cpu'}"]
    if steps is not None:
        out.append(f"trainer.max_steps={steps}")
    if max_time_s is not None:
        s = max(1, round(max_time_s))
        plus = "" if "max_time" in cfg_trainer else "+"
        out.append(f"{plus}trainer.max_time='{s // 86400:02d}:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}'")
    return out
