"""Training step and no-grad forward of one preset in fp32 / bf16 autocast, NCHW / NHWC, fused AdamW or not.

    .venv/bin/python bench/step_options.py MODEL SIZE BATCH [Hydra overrides]   e.g. unet 8 128
"""
from pathlib import Path
import time, sys, torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from difflab.diffusion import Epsilon, LinearSchedule
from difflab.module import DiffusionModule
model, size, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
extra = sys.argv[4:]
with initialize_config_dir(str(Path(__file__).resolve().parent.parent / "conf"), version_base="1.3"):
    cfg = compose("train", overrides=[f"model={model}", f"data.image_size={size}", "paths.output_dir=/tmp", *extra])
def tm(f, n):
    for _ in range(2): f()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    ts.sort(); return ts[len(ts)//2]
for prec in ["fp32", "fp32-cl", "bf16", "bf16-cl", "fp32-cl-fused", "bf16-fused"]:
    torch.manual_seed(0)
    net = instantiate(cfg.model)
    m = DiffusionModule(net, LinearSchedule(), Epsilon(), (1, size, size), channels_last="cl" in prec)
    opt = torch.optim.AdamW(net.parameters(), 1e-4, fused=True if "fused" in prec else None)
    x = torch.randn(batch, 1, size, size)
    g = torch.Generator().manual_seed(0)
    bf = prec.startswith("bf16")
    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
            l = m.losses(x, None, g)[0].mean()
        l.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    t = torch.zeros(batch, dtype=torch.long)
    def fwd():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
            net(x.contiguous(memory_format=m.memory_format), t)
    ts, tf = tm(step, 7), tm(fwd, 7)
    print(f"{model} {size} b{batch} {prec:14s}: train {1000*ts:7.1f} ms/step {batch/ts:6.0f} img/s | forward {1000*tf:6.1f} ms {batch/tf:6.0f} img/s", flush=True)
