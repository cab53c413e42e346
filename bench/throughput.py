"""How fast difflab trains and samples on this machine, against a bare PyTorch loop and Hugging Face diffusers,
all in one run (every ratio is between numbers of this run).

    .venv/bin/python bench/throughput.py [--tiny] [--only train contest sample quality] [--steps N]
        [--device cpu|cuda] [--quality MINUTES] [--out bench/results]     (make bench ARGS="...")

1. train: each model preset at 8 (digits), 28 (Fashion-MNIST) and 32 (CIFAR-10, RGB) pixels, in each precision
   row: ms/step, images/s, peak memory, FLOP/s and its share of this machine's measured matmul peak.
2. contest: at 28 and 8 pixels, the same U-Net, batch, data and AdamW: a bare PyTorch loop, difflab through
   Lightning's Trainer (difflab.train.train with the default callbacks), and diffusers' UNet2DModel +
   DDPMScheduler loop (train_unconditional.py's step), in each precision row.
3. sample: every conf/sampler at 10/20/50 network evaluations, as difflab's sample command runs by default;
   difflab's DDIM against diffusers' DDIM loop at diffusers' default (fp32) and like for like.
4. quality (--quality MINUTES only): FID-domain per wall-clock budget, difflab against diffusers.

Precision rows (--precisions, throughput_config.PRECISIONS): fp32 and bf16 (autocast) put all three in that
precision; auto is each one's default: difflab's trainer.precision=auto (bf16 where the CPU/GPU has bf16 units,
else fp32) with the bare loop alike, diffusers at fp32, as its example trains by default.

Writes throughput.json and throughput.md under --out. Without diffusers (pip install -e '.[diffusers]') its
contestants are skipped with a note. --only and --sizes choose less.
"""

import argparse
import json
import logging
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import lightning
import torch

import throughput_peer as peer
from throughput_config import PRECISIONS, resolved
from throughput_measure import matmul_peak
from throughput_report import markdown
from throughput_sample import sample_cells
from throughput_train import contest_cell, preset_cell

PARTS = ("train", "contest", "sample", "quality")


def log(*args):
    print(*args, flush=True)


# Defaults that differ by run: (tiny, CPU, GPU). A CPU trains the 32M-parameter DiT at 32x32 at a few images/s:
# the per-preset table takes a small batch there; the contest keeps Fashion-MNIST's experiment batch (64).
DEFAULTS = {"steps": (2, 5, 20), "warmup": (1, 1, 3), "batch": (8, 16, 64), "contest_batch": (8, 64, 64),
            "rounds": (1, 2, 1), "sample_batch": (4, 32, 256)}


def options(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny presets, 8-pixel images, few steps (the smoke test)")
    ap.add_argument("--only", nargs="+", choices=PARTS, default=None, help="parts to run (default: all but quality)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads for torch (default: torch's own, one per core); 1 is steadier on a busy machine")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="image sizes of parts 1-2 (8 28 32)")
    ap.add_argument("--models", nargs="+", default=None, metavar="PRESET[:OVERRIDE...]",
                    help="part 1's networks (default unet dit), e.g. unet_base:model.base_channels=128 (Ho et al.'s "
                         "CIFAR-10 U-Net, 38M parameters here) dit (DiT-S/2)")
    ap.add_argument("--precisions", nargs="+", choices=list(PRECISIONS), default=list(PRECISIONS))
    ap.add_argument("--steps", type=int, help="timed steps per training cell (tiny/CPU/GPU: %s)" % (DEFAULTS["steps"],))
    ap.add_argument("--warmup", type=int, help="untimed steps before them, >= 1 (%s)" % (DEFAULTS["warmup"],))
    ap.add_argument("--batch", type=int, help="batch of part 1 (%s)" % (DEFAULTS["batch"],))
    ap.add_argument("--contest-batch", type=int, help="batch of part 2 (%s)" % (DEFAULTS["contest_batch"],))
    ap.add_argument("--rounds", type=int,
                    help="turns each contestant of part 2 and of part 3's DDIM contest takes (%s)" % (DEFAULTS["rounds"],))
    ap.add_argument("--sample-batch", type=int, help="images per sampling call (%s)" % (DEFAULTS["sample_batch"],))
    ap.add_argument("--sample-compile", action="store_true",
                    help="part 3: difflab's DDIM also with compile=true (its compile time is reported apart)")
    ap.add_argument("--quality", type=float, default=None, metavar="MINUTES",
                    help="run part 4 with this training budget per contestant (takes 2 x MINUTES + sampling)")
    ap.add_argument("--quality-samples", type=int, default=2000, help="DDIM-50 samples per contestant for FID")
    ap.add_argument("--quality-precision", choices=list(PRECISIONS), default="auto",
                    help="precision row of part 4, training and FID samples (default: auto, each one's default)")
    ap.add_argument("--out", default="bench/results", help="folder for throughput.json and throughput.md")
    args = ap.parse_args(argv)
    column = 0 if args.tiny else 2 if args.device.startswith("cuda") else 1
    for key, values in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, values[column])
    args.warmup = max(1, args.warmup)
    parts = set(args.only or PARTS[:3])
    if args.quality is not None:
        parts.add("quality")
    if "quality" in parts and args.quality is None:
        ap.error("--only quality needs --quality MINUTES")
    args.parts = [p for p in PARTS if p in parts]
    return args


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{cpu_name()}, {torch.get_num_threads()} threads"
    diffusers = __import__("diffusers").__version__ if peer.available() else None
    return {"device": str(device), "name": name, "date": date.today().isoformat(), "torch": torch.__version__,
            "lightning": lightning.__version__, "diffusers": diffusers}


def chosen(args, sizes: list[int]) -> list[int]:
    return [s for s in sizes if args.sizes is None or s in args.sizes]


def distinct(precisions: list[str], device, notes: list[str]) -> list[str]:
    """The rows in which difflab computes in a precision no earlier row does here: part 1 is difflab alone, so
    auto would repeat the bf16 or the fp32 row (said in `notes`)."""
    out, seen = [], {}
    for p in precisions:
        ours = resolved(p, device.type)
        if ours["difflab"] in seen:
            notes.append(f"train: {p} is {ours['difflab']} here ({ours['why']}): its rows are the "
                         f"{seen[ours['difflab']]} rows")
            continue
        seen[ours["difflab"]] = p
        out.append(p)
    return out


def part_train(args, device, notes: list[str]) -> list[dict]:
    presets = args.models or (("unet_small", "dit_small") if args.tiny else ("unet", "dit"))
    cells = [(p, s, m) for p in distinct(args.precisions, device, notes)
             for s in chosen(args, [8] if args.tiny else [8, 28, 32]) for m in presets]
    rows = []
    for i, (precision, size, model) in enumerate(cells):
        log(f"[train {i + 1}/{len(cells)}] {model} {size}px {precision} batch {args.batch}")
        rows.append(preset_cell(model, size, precision, args.batch, device, args.warmup, args.steps))
    return rows


def part_contest(args, device) -> list[dict]:
    model = "unet_small" if args.tiny else "unet"
    cells = [(s, p) for s in chosen(args, [8] if args.tiny else [28, 8]) for p in args.precisions]
    rows = []
    for i, (size, precision) in enumerate(cells):
        log(f"[contest {i + 1}/{len(cells)}] {model} {size}px {precision} batch {args.contest_batch}")
        rows.append(contest_cell(model, size, precision, args.contest_batch, device, args.warmup, args.steps,
                                 rounds=args.rounds, progress=log))
    return rows


def run(args) -> dict:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"machine": machine(device), "options": {k: v for k, v in vars(args).items() if k != "parts"},
              "notes": []}
    if not peer.available():
        result["notes"].append("diffusers not installed: skipped (pip install -e '.[diffusers]')")
        log(result["notes"][-1])
    log(f"{result['machine']}\nmatmul peak ...")
    result["matmul_size"] = 512 if args.tiny else 2048
    result["matmul_peak"] = matmul_peak(device, n=result["matmul_size"])
    log(", ".join(f"  {k}: {v / 1e9:.1f} GFLOP/s" for k, v in result["matmul_peak"].items()))
    if "train" in args.parts:
        result["train"] = part_train(args, device, result["notes"])
    if "contest" in args.parts:
        result["contest"] = part_contest(args, device)
    if "sample" in args.parts:
        model, size = ("unet_small", 8) if args.tiny else ("unet", 28)
        log(f"[sample] {model} {size}px batch {args.sample_batch}")
        result["sample"] = sample_cells(model, size, args.sample_batch, [2, 4] if args.tiny else [10, 20, 50],
                                        device, progress=log, compile_ddim=args.sample_compile,
                                        rounds=args.rounds)
    if "quality" in args.parts:
        from throughput_quality import quality  # imports the FID code only when asked for

        log(f"[quality] {args.quality} minutes per contestant, {args.quality_samples} samples")
        result["quality"] = quality(args.quality, args.quality_samples, device, args.quality_precision,
                                    progress=log)
    return result


def main(argv=None):
    args = options(argv)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")  # inside Lightning
    for name in ("lightning.pytorch", "lightning.fabric", "diffusers"):
        logging.getLogger(name).setLevel(logging.ERROR)  # start-up chatter and tips, printed once per Trainer
    started = time.perf_counter()
    result = run(args)
    result["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "throughput.md").write_text(text)
    log("\n" + text + f"\nwritten: {out / 'throughput.json'}, {out / 'throughput.md'} ({result['seconds']} s)")


if __name__ == "__main__":
    sys.exit(main())
