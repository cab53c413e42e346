"""Measuring for bench/throughput.py: step times (median after a warm-up), peak memory, FLOPs, the matmul peak,
and a Lightning callback that times the steps of a real `difflab.train.train` run from the inside."""

import contextlib
import ctypes
import gc
import json
import statistics
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode

from difflab.precision import autocast_dtype, autocast as dtype_autocast


def sync(device: torch.device) -> None:
    # CUDA runs ahead of Python: without this a step's time is only the time to queue it
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str):
    """The autocast context of a resolved precision ('bf16-mixed': bf16 autocast), a no-op for '32-true'."""
    return dtype_autocast(device, autocast_dtype(precision))


def peak_key(precision: str) -> str:
    """Which matmul_peak entry a resolved precision's FLOP/s is a share of."""
    return "bf16" if autocast_dtype(precision) == torch.bfloat16 else "fp32"


def summarise(seconds: list[float], batch: int) -> dict:
    """ms/step (median over the timed steps: a logging or checkpoint step is an outlier, not the rate), the mean
    beside it, and images/s = batch / median."""
    med = statistics.median(seconds)
    return {"ms_per_step": 1000 * med, "ms_per_step_mean": 1000 * statistics.fmean(seconds),
            "images_per_s": batch / med, "timed_steps": len(seconds)}


def time_steps(step, warmup: int, steps: int, device: torch.device) -> list[float]:
    """Seconds of each of `steps` calls of step() after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    sync(device)
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def _status_kib(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class PeakMemory:
    """Peak memory a block of code adds, in MiB: CUDA's max_memory_allocated on a GPU; on CPU the growth of the
    process's peak RSS (VmHWM, reset through /proc/self/clear_refs so that each cell starts from its own RSS).
    On CPU, memory that earlier cells freed is first handed back to the system (malloc_trim): glibc keeps it
    otherwise, and a cell that reuses it would show no growth."""

    def __init__(self, device: torch.device):
        self.device, self.mib = device, None

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            gc.collect()
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            with contextlib.suppress(OSError):
                Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
            self.base = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc):
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" \
            else _status_kib("VmHWM") * 1024
        self.mib = max(0, peak - self.base) / 2**20


def count_flops(fn) -> int:
    """FLOPs of one call of fn() (matmuls, convolutions, attention: what FlopCounterMode knows)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_peak(device: torch.device, n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best FLOP/s of an n x n torch.mm in fp32 and bf16 on this device: the roof each row's FLOP/s is a share of."""
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
        best = min(time_steps(lambda: torch.mm(a, b), 1, repeats, device))
        out[name] = 2 * n**3 / best
    return out


class StepTimer(L.Callback):
    """Records, inside a Trainer, when training starts and when each batch ends (time.perf_counter, after the
    device is synchronised), and writes {"train_start": t, "batch_ends": [...], "precision", "optimizer",
    "layout"} as JSON to `path` when training ends. Hydra builds it from `+callbacks.bench_timer=...` overrides;
    `step_seconds` reads the file."""

    def __init__(self, path: str):
        self.path, self.start, self.ends, self.setup = Path(path), None, [], {}

    def on_train_start(self, trainer, pl_module):
        self.setup = {"precision": str(trainer.precision), "optimizer": optimizer_name(trainer.optimizers[0]),
                      "layout": layout(pl_module.net)}
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        sync(pl_module.device)
        self.ends.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module):
        self.path.write_text(json.dumps({"train_start": self.start, "batch_ends": self.ends, **self.setup}))


def layout(net: torch.nn.Module) -> str:
    """'NHWC' or 'NCHW': the memory format of the network's convolution weights (the first with more than one
    input channel and a kernel wider than 1, for which the two formats differ); '-' for a net without one (DiT)."""
    w = next((p for p in net.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1), None)
    return "-" if w is None else "NHWC" if w.is_contiguous(memory_format=torch.channels_last) else "NCHW"


def optimizer_name(optimizer: torch.optim.Optimizer) -> str:
    """'AdamW (fused)', 'AdamW (foreach)' or 'AdamW': which implementation of its update an optimizer runs."""
    kind = next((k for k in ("fused", "foreach") if optimizer.defaults.get(k)), None)
    return type(optimizer).__name__ + (f" ({kind})" if kind else "")


def step_seconds(record: dict, warmup: int) -> list[float]:
    """Seconds between successive batch ends after `warmup` steps: everything a step costs (data, forward,
    backward, optimizer, EMA and the other callbacks)."""
    ends = record["batch_ends"][max(1, warmup) - 1:]
    return [b - a for a, b in zip(ends, ends[1:])]
