"""Training speed for bench/throughput.py: each preset's step (part 1) and the three contestants (part 2).

A training step everywhere is: loss under autocast (or fp32), backward, grad-norm clip (difflab's
trainer.gradient_clip_val, 1.0; diffusers' example clips at 1.0 too), AdamW step, zero_grad. The AdamW is
`instantiate(cfg.optimizer)` for all three (conf/optimizer/adamw.yaml: fused). difflab's network, in the bare
loop too, is in the memory format that module.channels_last picks for the row's precision (build_module);
diffusers' UNet2DModel stays contiguous, as in its example.
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
from throughput_config import (LIGHTNING_OFF, PRECISIONS, compose_train, data_overrides, lightning_overrides,
                               resolved, timer_overrides)
from throughput_measure import (PeakMemory, autocast, count_flops, layout, optimizer_name, step_seconds,
                                summarise, time_steps)


def params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def difflab_step(module, optimizer, device, precision: str, clip: float):
    """step(x0 [N x C x H x W]) -> loss: DiffusionModule.losses (difflab's objective), without Lightning, under
    the autocast of `precision` (resolved: '32-true', 'bf16-mixed')."""
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
    """Part 1: one preset at one size on a fixed random batch, in difflab's precision of row `precision`: speed,
    peak memory, FLOPs. `model` is a conf/model preset, optionally with overrides after colons
    ('unet_base:model.base_channels=128')."""
    name, *overrides = model.split(":")
    cfg = compose_train(f"model={name}", *data_overrides(size), *overrides)
    shape = (cfg.data.channels, size, size)
    ours = resolved(precision, device.type)["difflab"]
    with PeakMemory(device) as mem:
        module = build_module(cfg, shape, precision=ours, device=device.type).to(device)
        opt = instantiate(cfg.optimizer)(module.parameters())
        x = torch.rand(batch, *shape, device=device) * 2 - 1
        step = difflab_step(module, opt, device, ours, cfg.trainer.gradient_clip_val)
        flops = count_flops(lambda: step(x))  # the same each step: counted once, as the first warm-up step
        seconds = time_steps(lambda: step(x), warmup - 1, steps, device)
    out = {"model": model, "size": size, "channels": shape[0], "precision": precision, "resolved": ours,
           "layout": layout(module.net), "batch": batch, "params": params(module.net), **summarise(seconds, batch),
           "peak_mem_mib": mem.mib, "flops_per_step": flops}
    out["flops_per_s"] = flops / (out["ms_per_step"] / 1000)
    return out


def batches(dataset, batch: int, device):
    """Endless shuffled batches of images (labels dropped), as a bare training script reads them."""
    while True:
        for x, _ in DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True):
            yield x.to(device, non_blocking=True)


def lightning_seconds(base: list[str], precision: str, device, warmup: int, steps: int,
                      setup: dict | None = None) -> list[float]:
    """Step times of a real `difflab.train.train(cfg)` run with trainer.precision=precision, measured by
    throughput_measure.StepTimer; `setup` (a dict) receives the precision, optimizer and memory format
    the Trainer ran."""
    with tempfile.TemporaryDirectory(prefix="difflab-bench-") as tmp:
        cfg = compose_train(*base, *LIGHTNING_OFF, *timer_overrides(tmp),
                            *lightning_overrides(precision, device=str(device), steps=warmup + steps), output_dir=tmp)
        train(cfg)
        record = json.loads((Path(tmp) / "steps.json").read_text())
    if setup is not None:
        setup.update({k: record[k] for k in ("precision", "optimizer", "layout")})
    return step_seconds(record, warmup)


def contest_cell(model: str, size: int, precision: str, batch: int, device, warmup: int, steps: int,
                 rounds: int = 1, progress=print) -> dict:
    """Part 2: bare loop, difflab through Lightning, diffusers; same data, batch and optimizer, each in the
    precision that the row `precision` gives it (throughput_config.PRECISIONS).

    With rounds > 1 the three take turns (bare, difflab, diffusers, bare, ...) and each one's median is over all
    its rounds' steps: on a shared machine a burst of someone else's load then falls on all three alike."""
    base = [f"model={model}", *data_overrides(size), f"data.batch_size={batch}"]
    cfg = compose_train(*base)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    shape, clip = datamodule.image_shape, cfg.trainer.gradient_clip_val
    data = batches(datamodule.train_set, batch, device)
    res = resolved(precision, device.type)
    out = {"model": model, "size": size, "data": cfg.data.name, "precision": precision, "resolved": res,
           "batch": batch, "rounds": rounds}

    module = build_module(cfg, shape, precision=res["bare"], device=device.type).to(device)
    optimizer = instantiate(cfg.optimizer)(module.parameters())
    bare = difflab_step(module, optimizer, device, res["bare"], clip)
    out["params_difflab"] = params(module.net)
    out["layout"] = {"bare": layout(module.net)}
    out["optimizer"] = {"bare": optimizer_name(optimizer)}
    ran = {}  # what the Lightning run computed in, optimized with and laid out its network in
    contestants = {"bare": lambda: time_steps(lambda: bare(next(data)), warmup, steps, device),
                   "difflab": lambda: lightning_seconds(base, PRECISIONS[precision].difflab, device, warmup, steps,
                                                        setup=ran)}
    if peer.available():
        unet = peer.peer_unet(cfg.model, shape[0], size).to(device)
        peer_optimizer = instantiate(cfg.optimizer)(unet.parameters())
        peer_step = peer.train_step(unet, peer.ddpm_scheduler(), peer_optimizer,
                                    lambda: autocast(device, res["diffusers"]), clip)
        out["params_diffusers"] = params(unet)
        out["layout"]["diffusers"] = layout(unet)
        out["optimizer"]["diffusers"] = optimizer_name(peer_optimizer)
        contestants["diffusers"] = lambda: time_steps(lambda: peer_step(next(data)), warmup, steps, device)

    seconds = {name: [] for name in contestants}
    for r in range(rounds):
        for name, run in contestants.items():
            seconds[name] += run()
            rate = batch / statistics.median(seconds[name][-steps:])
            progress(f"  {name:10s} {rate:8.1f} img/s (round {r + 1})")
    for name, s in seconds.items():
        out[name] = summarise(s, batch)
    out["resolved"]["difflab"], out["optimizer"]["difflab"], out["layout"]["difflab"] = \
        ran["precision"], ran["optimizer"], ran["layout"]
    out["ratio_difflab_bare"] = out["difflab"]["images_per_s"] / out["bare"]["images_per_s"]
    if "diffusers" in out:
        out["ratio_difflab_diffusers"] = out["difflab"]["images_per_s"] / out["diffusers"]["images_per_s"]
    return out
