"""Training speed for bench/throughput.py: each preset's step (part 1) and the three contestants (part 2).

A training step everywhere is: loss under autocast (or fp32), backward, grad-norm clip (difflab's
trainer.gradient_clip_val, 1.0; diffusers' example clips at 1.0 too), AdamW step, zero_grad.
"""

import json
import statistics
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from difflab.build import build_module, instantiate
from difflab.train import train

import throughput_peer as peer
from throughput_config import (LIGHTNING_OFF, compose_train, data_overrides, lightning_overrides,
                               timer_overrides)
from throughput_measure import PeakMemory, autocast, count_flops, step_seconds, summarise, time_steps


def params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def difflab_step(module, optimizer, device, precision: str, clip: float):
    """step(x0 [N x C x H x W]) -> loss: DiffusionModule.losses (difflab's objective), without Lightning."""
    g = torch.Generator(device=device).manual_seed(0)

    def step(x0: torch.Tensor) -> torch.Tensor:
        with autocast(device, precision):
            loss = module.losses(x0, None, g)[0].mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def preset_cell(model: str, size: int, precision: str, batch: int, device, warmup: int, steps: int) -> dict:
    """Part 1: one preset at one size on a fixed random batch: speed, peak memory, FLOPs."""
    cfg = compose_train(f"model={model}", *data_overrides(size))
    shape = (cfg.data.channels, size, size)
    with PeakMemory(device) as mem:
        module = build_module(cfg, shape).to(device)
        opt = instantiate(cfg.optimizer)(module.parameters())
        x = torch.rand(batch, *shape, device=device) * 2 - 1
        step = difflab_step(module, opt, device, precision, cfg.trainer.gradient_clip_val)
        flops = count_flops(lambda: step(x))  # the same each step: counted once, as the first warm-up step
        seconds = time_steps(lambda: step(x), warmup - 1, steps, device)
    out = {"model": model, "size": size, "channels": shape[0], "precision": precision, "batch": batch,
           "params": params(module.net), **summarise(seconds, batch), "peak_mem_mib": mem.mib,
           "flops_per_step": flops}
    out["flops_per_s"] = flops / (out["ms_per_step"] / 1000)
    return out


def batches(dataset, batch: int, device):
    """Endless shuffled batches of images (labels dropped), as a bare training script reads them."""
    while True:
        for x, _ in DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True):
            yield x.to(device, non_blocking=True)


def lightning_seconds(base: list[str], precision: str, device, warmup: int, steps: int) -> list[float]:
    """Step times of a real `difflab.train.train(cfg)` run, measured by throughput_measure.StepTimer."""
    with tempfile.TemporaryDirectory(prefix="difflab-bench-") as tmp:
        probe = compose_train(*base, output_dir=tmp)
        cfg = compose_train(*base, *LIGHTNING_OFF, *timer_overrides(tmp),
                            *lightning_overrides(probe.trainer, precision, device=str(device), steps=warmup + steps),
                            output_dir=tmp)
        train(cfg)
        return step_seconds(json.loads((Path(tmp) / "steps.json").read_text()), warmup)


def contest_cell(model: str, size: int, precision: str, batch: int, device, warmup: int, steps: int,
                 rounds: int = 1, progress=print) -> dict:
    """Part 2: bare loop, difflab through Lightning, diffusers; same data, batch, optimizer and precision.

    With rounds > 1 the three take turns (bare, difflab, diffusers, bare, ...) and each one's median is over all
    its rounds' steps: on a shared machine a burst of someone else's load then falls on all three alike."""
    base = [f"model={model}", *data_overrides(size), f"data.batch_size={batch}"]
    cfg = compose_train(*base)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    shape, clip = datamodule.image_shape, cfg.trainer.gradient_clip_val
    data = batches(datamodule.train_set, batch, device)
    out = {"model": model, "size": size, "data": cfg.data.name, "precision": precision, "batch": batch,
           "rounds": rounds}

    module = build_module(cfg, shape).to(device)
    bare = difflab_step(module, instantiate(cfg.optimizer)(module.parameters()), device, precision, clip)
    out["params_difflab"] = params(module.net)
    contestants = {"bare": lambda: time_steps(lambda: bare(next(data)), warmup, steps, device),
                   "difflab": lambda: lightning_seconds(base, precision, device, warmup, steps)}
    if peer.available():
        unet = peer.peer_unet(cfg.model, shape[0], size).to(device)
        peer_step = peer.train_step(unet, peer.ddpm_scheduler(), instantiate(cfg.optimizer)(unet.parameters()),
                                    lambda: autocast(device, precision), clip)
        out["params_diffusers"] = params(unet)
        contestants["diffusers"] = lambda: time_steps(lambda: peer_step(next(data)), warmup, steps, device)

    seconds = {name: [] for name in contestants}
    for r in range(rounds):
        for name, run in contestants.items():
            seconds[name] += run()
            rate = batch / statistics.median(seconds[name][-steps:])
            progress(f"  {name:10s} {rate:8.1f} img/s (round {r + 1})")
    for name, s in seconds.items():
        out[name] = summarise(s, batch)
    out["ratio_difflab_bare"] = out["difflab"]["images_per_s"] / out["bare"]["images_per_s"]
    if "diffusers" in out:
        out["ratio_difflab_diffusers"] = out["difflab"]["images_per_s"] / out["diffusers"]["images_per_s"]
    return out
