"""torch.profiler table of the default U-Net training step at 8x8, batch 128: where its time goes.

    .venv/bin/python bench/profile_step.py bf16|fp32 [Hydra overrides]
"""
from pathlib import Path
import time, sys, torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from difflab.diffusion import Epsilon, LinearSchedule
from difflab.module import DiffusionModule
from torch.profiler import profile
with initialize_config_dir(str(Path(__file__).resolve().parent.parent / "conf"), version_base="1.3"):
    cfg = compose("train", overrides=["paths.output_dir=/tmp", *sys.argv[2:]])
net = instantiate(cfg.model)
m = DiffusionModule(net, LinearSchedule(), Epsilon(), (1, 8, 8))
opt = torch.optim.AdamW(net.parameters(), 1e-3, fused=True)
x = torch.randn(128, 1, 8, 8); g = torch.Generator().manual_seed(0)
bf = sys.argv[1] == "bf16"
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
        l = m.losses(x, None, g)[0].mean()
    l.backward(); opt.step(); opt.zero_grad(set_to_none=True)
for _ in range(3): step()
with profile() as p:
    for _ in range(5): step()
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
