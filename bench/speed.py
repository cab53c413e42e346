"""Training-step and sampling speed of each model preset on this machine's device.

    .venv/bin/python bench/speed.py [--device cpu|cuda] [--out bench/results/speed.md]

Prints (and writes) a Markdown table: parameters, ms per training step (forward + backward + AdamW) and
images per second for one network evaluation at sampling, per preset and image size.
"""

import argparse
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from difflab.diffusion import Epsilon, LinearSchedule
from difflab.module import DiffusionModule

CONF = Path(__file__).resolve().parent.parent / "conf"
CASES = [("unet", 8, 128), ("unet_small", 8, 128), ("dit_small", 8, 128), ("unet", 28, 64), ("unet_base", 32, 128),
         ("dit", 32, 128)]


def timed(fn, repeats: int, device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def bench(model: str, size: int, batch: int, device, repeats: int) -> dict:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", f"data.image_size={size}", "paths.output_dir=/tmp"])
    net = instantiate(cfg.model).to(device)
    module = DiffusionModule(net, LinearSchedule(), Epsilon(), (1, size, size)).to(device)
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    x = torch.randn(batch, 1, size, size, device=device)
    g = torch.Generator(device=device).manual_seed(0)

    def step():
        module.losses(x, None, g)[0].mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t = torch.zeros(batch, dtype=torch.long, device=device)
    with torch.no_grad():
        fwd = timed(lambda: net(x, t), repeats, device)
    return {"model": model, "size": size, "batch": batch, "params (M)": sum(p.numel() for p in net.parameters()) / 1e6,
            "ms/step": 1000 * timed(step, repeats, device), "img/s per NFE": batch / fwd}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench/results/speed.md")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows = [bench(m, s, b, device, args.repeats) for m, s, b in CASES]
    head = list(rows[0])
    lines = [f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else f'cpu x {torch.get_num_threads()} threads'}",
             "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k in head) + " |" for r in rows]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
