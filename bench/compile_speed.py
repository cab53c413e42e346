"""torch.compile against eager: the training step and the sampling forward, with the compile time beside them.

    .venv/bin/python bench/compile_speed.py [--steps 10] [--only train sample] [--out bench/results]

Training: the default run's U-Net (digits, 8x8) and the Fashion-MNIST experiment's (28x28) at their batches,
forward + backward + fused AdamW through DiffusionModule.losses under the precision `auto` resolves to; eager, then
`net.compile()` as `module.compile=true` does. Sampling: the Fashion U-Net's no-grad forward at batch 32 and 256,
eager, compiled for fixed shapes (`dynamic=False`, as `sample ... compile=true` does: generate pads the last batch)
and with symbolic shapes (`dynamic=True`). "compile s" is the first call (tracing and code generation) less one
eager call; ms are medians after two warm-up calls. Each mode starts from its own copy of the network, same seed.
"""

import argparse
import os
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from difflab.build import build_module, instantiate
from difflab.precision import autocast, autocast_dtype, choose_precision

from throughput_config import compose_train

CASES = {  # name: (overrides of the train config, batch)
    "default U-Net, 8x8 digits": ([], 64),
    "Fashion U-Net, 28x28": (["experiment=fashion_mnist_unet"], 64),
}


def median_ms(fn, steps: int) -> tuple[float, float]:
    """(seconds of the first call, median ms of `steps` calls after two more warm-up calls)."""
    torch._dynamo.reset()  # each row compiles from nothing: no graph of an earlier row's shapes is reused
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    fn(), fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, 1000 * statistics.median(times)


def train_case(overrides: list[str], batch: int, steps: int, precision: str) -> list[dict]:
    cfg = compose_train(*overrides)
    dtype, rows = autocast_dtype(precision), []
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        module = build_module(cfg, (1, cfg.data.image_size, cfg.data.image_size), precision=precision,
                              device="cpu")
        if mode == "compiled":
            module.net.compile(dynamic=False)  # as DiffusionModule.on_fit_start
        optimizer = instantiate(cfg.optimizer)(module.parameters())
        x = torch.rand(batch, *module.image_shape) * 2 - 1
        g = torch.Generator().manual_seed(0)

        def step():
            with autocast(torch.device("cpu"), dtype):
                loss = module.losses(x, None, g)[0].mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        first, ms = median_ms(step, steps)
        rows.append({"mode": mode, "first_s": first, "ms": ms, "images_per_s": 1000 * batch / ms})
    return rows


def sample_case(batch: int, steps: int, dtype) -> list[dict]:
    cfg = compose_train("experiment=fashion_mnist_unet")
    rows = []
    for mode, dynamic in (("eager", None), ("compiled, fixed shapes", False), ("compiled, dynamic shapes", True)):
        torch.manual_seed(0)
        net = instantiate(cfg.model).eval()
        fn = net if dynamic is None else torch.compile(net, dynamic=dynamic)
        x, t = torch.randn(batch, 1, 28, 28), torch.rand(batch)

        @torch.no_grad()
        def forward():
            with autocast(torch.device("cpu"), dtype):
                fn(x, t)

        first, ms = median_ms(forward, steps)
        rows.append({"mode": mode, "first_s": first, "ms": ms, "images_per_s": 1000 * batch / ms})
    return rows


def with_compile_time(rows: list[dict]) -> list[dict]:
    eager = rows[0]
    for r in rows:
        r["compile_s"] = max(0.0, r["first_s"] - eager["ms"] / 1000) if r is not eager else 0.0
        r["speedup"] = eager["ms"] / r["ms"]
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10, help="timed calls per row (median)")
    ap.add_argument("--only", nargs="+", choices=["train", "sample"], default=["train", "sample"])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 256], help="sampling batches")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)
    precision = choose_precision("auto", "cpu")
    dtype = autocast_dtype(precision)
    result = {"date": date.today().isoformat(), "precision": precision, "threads": torch.get_num_threads(),
              "train": {}, "sample": {}}
    print(f"precision auto -> {precision}; {torch.get_num_threads()} threads", flush=True)
    if "train" in args.only:
        for name, (overrides, batch) in CASES.items():
            result["train"][name] = with_compile_time(train_case(overrides, batch, args.steps, precision))
            print(name, json.dumps(result["train"][name]), flush=True)
    if "sample" in args.only:
        for batch in args.batches:
            result["sample"][batch] = with_compile_time(sample_case(batch, args.steps, dtype))
            print(f"sample batch {batch}", json.dumps(result["sample"][batch]), flush=True)
    print("\n| what | mode | ms | images/s | speed-up | compile s |\n| --- | --- | --- | --- | --- | --- |")
    for part, cases in (("train", result["train"]), ("sample", result["sample"])):
        for name, rows in cases.items():
            what = f"training step, {name}" if part == "train" else f"sampling forward, Fashion U-Net, batch {name}"
            for r in rows:
                print(f"| {what} | {r['mode']} | {r['ms']:.1f} | {r['images_per_s']:.0f} | {r['speedup']:.2f} | "
                      f"{r['compile_s']:.0f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compile_speed.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with tempfile.TemporaryDirectory(prefix="difflab-inductor-") as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # compile times without an earlier run's cached kernels
        main()
