"""Each speed switch of the default training run, on and off, in one run: ms per training step through Lightning.

    .venv/bin/python bench/switches.py [--steps 30] [--warmup 5] [--out bench/results]   (make bench-switches)

Every row is `difflab.train.train` on the default config (digits, U-Net) with one override, timed from the inside
(throughput_measure.StepTimer: median ms between consecutive training steps after a warm-up, and the mean, which
also counts the logging steps). Sample grids, trajectories and FID are off in every row but their own, whose cost
is the mean over the steps (one grid or one evaluation in the timed window). The EMA row compares Lightning's
per-tensor average with difflab's single foreach call on the default network outside Lightning.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel

from difflab.build import instantiate
from difflab.callbacks.ema import EMA
from difflab.precision import resolve_precision
from difflab.train import train

from throughput_config import LIGHTNING_OFF, compose_train, timer_overrides
from throughput_measure import step_seconds

ROWS = [  # (what, overrides on top of the default run with periodic images and FID off)
    ("defaults (precision auto, fused AdamW, foreach EMA)", []),
    ("trainer.precision=32 (channels_last auto: NHWC)", ["trainer.precision=32"]),
    ("trainer.precision=32 module.channels_last=false", ["trainer.precision=32", "module.channels_last=false"]),
    ("module.channels_last=true", ["module.channels_last=true"]),
    ("optimizer.fused=false", ["optimizer.fused=false"]),
    ("trainer.log_every_n_steps=1 (grad norm + buckets each step)", ["trainer.log_every_n_steps=1"]),
    ("trainer.log_every_n_steps=1 module.loss_buckets=0", ["trainer.log_every_n_steps=1", "module.loss_buckets=0"]),
    ("callbacks.ema=null (no EMA weights)", ["callbacks.ema=null"]),
    ("callbacks.divergence=null (no NaN/inf check)", ["callbacks.divergence=null"]),
    ("module.compile=true (its compile time falls in the warm-up steps)", ["module.compile=true"]),
]


def lightning_row(overrides: list[str], steps: int, warmup: int, periodic: list[str] | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="difflab-switches-") as tmp:
        off = [o for o in LIGHTNING_OFF if not any(o.startswith(p.split("=")[0] + "=") for p in periodic or [])]
        cfg = compose_train(*off, *(periodic or []), *timer_overrides(tmp), *overrides,
                            f"trainer.max_steps={warmup + steps}", output_dir=tmp)
        train(cfg)
        seconds = step_seconds(json.loads((Path(tmp) / "steps.json").read_text()), warmup)
    return {"ms_median": 1000 * statistics.median(seconds), "ms_mean": 1000 * statistics.fmean(seconds)}


def ema_row(repeats: int = 50) -> dict:
    """ms per EMA update of the default U-Net: per-tensor avg_fn (Lightning/torch's loop) against one foreach."""
    net = instantiate(compose_train().model)
    ema = EMA(decay=0.999)
    per_tensor = AveragedModel(net, avg_fn=lambda a, c, n: 0.999 * a + 0.001 * c, use_buffers=True)
    foreach = AveragedModel(net, multi_avg_fn=ema._average, use_buffers=True)
    out = {}
    for name, model in [("per_tensor", per_tensor), ("foreach", foreach)]:
        model.update_parameters(net)
        model.update_parameters(net)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.update_parameters(net)
        out[name] = 1000 * (time.perf_counter() - t0) / repeats
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)
    rows = []
    for what, overrides in ROWS:
        print(f"[{len(rows) + 1}/{len(ROWS) + 2}] {what}", flush=True)
        rows.append({"what": what, **lightning_row(overrides, args.steps, args.warmup)})
    # one grid / one FID evaluation inside the timed window: its cost shows in the mean
    k = args.warmup + args.steps // 2
    for what, periodic in [(f"a sample grid (64 images, DDIM 50) at step {k}", [f"callbacks.sample_grid.every_n_steps={k}"]),
                           ("an FID evaluation (512 samples, DDIM 50) once",
                            ["callbacks.evaluation.every_n_epochs=2"])]:
        print(f"[{len(rows) + 1}/{len(ROWS) + 2}] {what}", flush=True)
        rows.append({"what": what, **lightning_row([], args.steps, args.warmup, periodic)})
    ema = ema_row()
    precision, why = resolve_precision("auto", "cpu")
    lines = [f"Default run's training step, {date.today().isoformat()}, {torch.get_num_threads()} threads; auto = "
             f"{precision} ({why}); {args.steps} steps after {args.warmup} warm-up", "",
             "| switch | ms/step (median) | ms/step (mean) | median / defaults |", "| --- | --- | --- | --- |"]
    base = rows[0]["ms_median"]
    lines += [f"| {r['what']} | {r['ms_median']:.1f} | {r['ms_mean']:.1f} | {r['ms_median'] / base:.2f} |" for r in rows]
    lines += ["", f"EMA update of the default U-Net: per tensor {ema['per_tensor']:.2f} ms, one foreach call "
                  f"{ema['foreach']:.2f} ms"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "switches.json").write_text(json.dumps({"rows": rows, "ema_ms": ema}, indent=2) + "\n")
    (out / "switches.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
