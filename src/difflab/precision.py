"""Which number format a run computes in: `precision=auto` picks bf16 autocast where the hardware has bf16 units.

bf16 autocast is fast only where the processor multiplies bf16 natively: NVIDIA GPUs from Ampere on, and x86
CPUs with AVX512-BF16 or AMX-BF16 (oneDNN's bf16 kernels). Elsewhere bf16 is emulated and slower than float32,
so `auto` keeps float32 there. The same choice serves training (Lightning's precision plugin) and sampling
(`autocast` around the network in the denoiser); the maths around the network stays in float32/float64.
"""

import contextlib
import functools
import platform
from pathlib import Path

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only

from difflab.errors import ConfigError

# Lightning's spellings and what they mean; 16-bit float autocast has no fast path on CPU.
MIXED = {"bf16-mixed": torch.bfloat16, "bf16": torch.bfloat16, "16-mixed": torch.float16, "16": torch.float16}
FULL = {"32": "32-true", "32-true": "32-true", "64": "64-true", "64-true": "64-true", "bf16-true": "bf16-true",
        "16-true": "16-true", "transformer-engine": "transformer-engine"}
ALLOWED = "auto, 32, bf16-mixed, 16-mixed (CUDA), 64"


@functools.cache
def cpu_bf16_units() -> str | None:
    """The CPU's bf16 matrix/vector units by name ('AMX-BF16', 'AVX512-BF16'), or None where it has none or
    they cannot be read (only Linux's /proc/cpuinfo on x86 is read)."""
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return None
    if "amx_bf16" in flags:
        return "AMX-BF16"
    return "AVX512-BF16" if "avx512_bf16" in flags else None


def device_type(accelerator) -> str:
    """'cuda', 'mps' or 'cpu' for a Lightning accelerator name (auto: CUDA if present) or a torch device."""
    name = str(getattr(accelerator, "type", accelerator) or "auto").split(":")[0].lower()
    if name in ("gpu", "cuda") or (name == "auto" and torch.cuda.is_available()):
        return "cuda"
    if name == "mps" or (name == "auto" and torch.backends.mps.is_available()):
        return "mps"
    return "cpu"


def bf16_fast(device: str) -> tuple[bool, str]:
    """(whether bf16 autocast is faster than float32 on this device type, why in a few words)."""
    if device == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
        return ok, "this GPU multiplies bf16 natively" if ok else "this GPU has no native bf16"
    if device == "cpu":
        units = cpu_bf16_units()
        return units is not None, f"this CPU has {units} units" if units else "this CPU has no bf16 units"
    return False, f"bf16 autocast is not measured on {device}"


def resolve_precision(precision, accelerator="auto", key: str = "trainer.precision") -> tuple[str, str]:
    """(a precision Lightning takes, the reason) for the config key `key`; 'auto' -> bf16-mixed where bf16 is
    fast, else 32-true. Raises ConfigError, naming what is allowed, for a value this device cannot run."""
    value = "32" if precision is None else str(precision)
    device = device_type(accelerator)
    if value == "auto":
        fast, why = bf16_fast(device)
        return ("bf16-mixed" if fast else "32-true"), f"auto: {why}"
    if value not in MIXED and value not in FULL:
        raise ConfigError(f"{key}={precision} is not valid; allowed: {ALLOWED}")
    if value.startswith("16") and device != "cuda":
        raise ConfigError(f"{key}={precision} needs a CUDA GPU (float16 autocast has no fast path on "
                          f"{device}); allowed here: auto, 32, bf16-mixed, 64")
    if value.startswith("bf16") and device == "cuda" and not bf16_fast("cuda")[0]:
        raise ConfigError(f"{key}={precision}: this GPU has no bf16 support; allowed here: auto, 32, "
                          "16-mixed, 64")
    if value.startswith("bf16") and device == "cpu" and not bf16_fast("cpu")[0]:
        return value, "as asked (this CPU has no bf16 units: emulated, slower than 32)"
    return value, "as asked"


def choose_precision(precision, accelerator="auto", key: str = "trainer.precision") -> str:
    """resolve_precision, with the choice and its reason said in one log line (rank 0 of a multi-process run)."""
    resolved, why = resolve_precision(precision, accelerator, key)
    _say(f"precision: {resolved} ({why})")
    return resolved


@rank_zero_only
def _say(message: str) -> None:
    print(message, flush=True)  # stdout: stderr is kept for the one-line error a bad config gets


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision ('bf16-mixed' -> bfloat16), None for full precision."""
    return MIXED.get(str(precision))


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """torch.autocast on `device` with `dtype`, or a no-op context when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def weight_cache(device: torch.device | str, dtype: torch.dtype | None):
    """Hold autocast's casts of the weights for the whole block: a network evaluated many times under `autocast`
    (a sampler's loop) then casts each weight to `dtype` once, not at every call (the same numbers: a cast is a
    cast). autocast itself stays off inside; the Denoiser turns it on around the network.

    torch clears its cast cache when the outermost autocast context exits; this context (autocast disabled) is
    that outermost one. Only tensors that require grad are cached (the network's parameters), so the block must not
    change the weights in place; under torch.inference_mode torch keeps no cache (callers use no_grad). A no-op
    context when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype, enabled=False)


def clip_unscaled(parameters, precision, value: float, algorithm: str | None, total_norm=None) -> bool:
    """Clip gradients to `value` (by 'value', else by their total 2-norm) wherever no float16 loss scaler holds them
    scaled, and say whether it did; under float16 (a scaler) Lightning's plugin unscales and clips.

    Lightning's mixed-precision plugin refuses to clip for an optimizer that unscales internally (fused AdamW) even
    under bf16, which has no scaler: its gradients are the true ones. `total_norm`, a callable, returns the norm if
    it is computed already for this step (difflab.trainer.step_grad_norm), sparing a second read of every
    gradient."""
    if not value or str(precision).startswith("16"):
        return False
    grads = [p for p in parameters if p.grad is not None]
    if algorithm == "value":
        torch.nn.utils.clip_grad_value_(grads, value)
    elif grads:
        norm = None if total_norm is None else total_norm()
        norm = torch.nn.utils.get_total_norm([p.grad for p in grads], foreach=True) if norm is None else norm
        torch.nn.utils.clip_grads_with_norm_(grads, value, norm, foreach=True)
    return True
