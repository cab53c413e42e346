"""What bench/throughput.py asks of difflab's configs: the composed train config, the overrides that differ
from a user's run, and the precision rows, all in this one file."""

from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir

from difflab.data.fashion_mnist import DEBIAN_DIR, find_files
from difflab.precision import resolve_precision

CONF = Path(__file__).resolve().parent.parent / "conf"


@dataclass(frozen=True)
class Row:
    """One precision row of every table: what difflab (its trainer.precision), the bare loop and diffusers
    compute in, as Lightning spells it; 'auto' is what difflab.precision.resolve_precision picks on the device.
    `says` is the row in words for the report (str.format over `resolved`'s keys)."""

    difflab: str
    bare: str
    diffusers: str
    says: str


PRECISIONS = {
    "fp32": Row("32-true", "32-true", "32-true", "all three in float32"),
    "bf16": Row("bf16-mixed", "bf16-mixed", "bf16-mixed", "all three under bf16 autocast (float32 weights)"),
    # What a user gets by default. The bare loop takes difflab's choice, so that difflab / bare stays like for
    # like; diffusers' examples/unconditional_image_generation/train_unconditional.py has --mixed_precision "no".
    "auto": Row("auto", "auto", "32-true", "difflab's default, trainer.precision=auto ({difflab} here: {why}), and "
                "the bare loop alike; diffusers at its example's default (train_unconditional.py, --mixed_precision "
                "no), fp32"),
}


def resolved(name: str, device: str) -> dict[str, str]:
    """{"difflab", "bare", "diffusers": the precision each computes in on device ('cpu', 'cuda'), "why": the
    reason difflab's resolution gives} for the row `name`."""
    row = PRECISIONS[name]
    out = {who: resolve_precision(getattr(row, who), device)[0] for who in ("difflab", "bare", "diffusers")}
    out["why"] = resolve_precision(row.difflab, device)[1].removeprefix("auto: ")
    return out


def describe(name: str, res: dict[str, str]) -> str:
    """The row in words, e.g. 'auto: difflab's default ... (bf16-mixed here: this CPU has AVX512-BF16 units) ...'."""
    return f"{name}: " + PRECISIONS[name].says.format(**res)


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


def lightning_overrides(precision: str, *, device: str, steps: int | None = None,
                        max_time_s: float | None = None) -> list[str]:
    """trainer.* overrides for a timed Lightning run: precision (a Row's difflab value), accelerator, max_steps
    and max_time."""
    out = [f"trainer.precision={precision}", f"trainer.accelerator={'gpu' if device.startswith('cuda') else 'cpu'}"]
    if steps is not None:
        out.append(f"trainer.max_steps={steps}")
    if max_time_s is not None:
        s = max(1, round(max_time_s))
        out.append(f"trainer.max_time='{s // 86400:02d}:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}'")
    return out
