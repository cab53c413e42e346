"""Sampling speed for bench/throughput.py (part 3): every conf/sampler/*.yaml at a few network-evaluation
budgets through `DiffusionModule.sample`, and difflab's DDIM against diffusers' DDIMScheduler loop.

difflab samples as its sample command does by default: the network computed in `precision=auto` resolved for
the device, in the memory format module.channels_last=auto gives it. diffusers' loop is timed at its default
(float32) and, where difflab's choice is an autocast, under the same autocast (like for like); both in
throughput_peer.SAMPLE_FORMAT. Both networks are untrained (speed does not depend on the weights).
"""

import dataclasses

import torch

from difflab.build import build_module, instantiate
from difflab.precision import resolve_precision

import throughput_peer as peer
from throughput_config import CONF, compose_train, data_overrides
from throughput_measure import autocast, layout, sync, time_steps

SAMPLERS = sorted(p.stem for p in (CONF / "sampler").glob("*.yaml"))


def with_nfe(sampler, nfe: int, T: int):
    """The sampler with the most steps whose network evaluations do not exceed nfe (heun: 2 steps - 1)."""
    steps = next(s for s in range(nfe, 0, -1) if dataclasses.replace(sampler, steps=s).nfe(T) <= nfe)
    return dataclasses.replace(sampler, steps=steps)


def images_per_s(draw, batch: int, device, repeats: int) -> float:
    return batch / min(time_steps(draw, 0, repeats, device))


def sample_cells(model: str, size: int, batch: int, nfes: list[int], device, repeats: int = 1,
                 progress=print, compile_ddim: bool = False, rounds: int = 3) -> dict:
    """{"difflab": [rows per sampler and budget], "ddim_vs_diffusers": [rows per budget], precisions, params}.

    At each budget difflab's DDIM and diffusers' loop take turns, `rounds` times, each contestant's fastest round
    kept, so that a drift of the machine's speed falls on all of them alike.
    compile_ddim: difflab's DDIM also with `compile=true` (sample / evaluate's option), its first call's seconds
    (the compilation) in "compile_s"."""
    cfg = compose_train(f"model={model}", *data_overrides(size))
    shape = (cfg.data.channels, size, size)
    precision, why = resolve_precision("auto", device.type)
    module = build_module(cfg, shape, precision=precision, device=device.type).to(device).eval()
    T = module.timesteps
    module.sample(batch, seed=0, batch_size=batch, sampler=with_nfe(module.sampler, 2, T))  # warm-up
    out = {"model": model, "size": size, "batch": batch, "rounds": rounds, "precision": precision, "why": why.removeprefix("auto: "),
           "layout": layout(module.net), "difflab": [], "ddim_vs_diffusers": [],
           "params_difflab": sum(p.numel() for p in module.net.parameters())}
    # diffusers at its default, then like for like (the same autocast as difflab) where that differs
    settings = ["32-true"] + ([precision] if module.autocast_dtype is not None else [])
    peer_rate = peer_ddim(cfg.model, shape, batch, device, repeats, out, settings) if peer.available() else None
    for name in SAMPLERS:
        base = instantiate(compose_train(f"model={model}", *data_overrides(size), f"sampler={name}").sampler)
        for nfe in nfes:
            sampler = with_nfe(base, nfe, T)
            rate = images_per_s(lambda: module.sample(batch, sampler=sampler, seed=0, batch_size=batch), batch,
                                device, repeats)
            out["difflab"].append({"sampler": name, "steps": sampler.steps, "nfe": sampler.nfe(T),
                                   "images_per_s": rate})
            progress(f"  {name:16s} NFE {sampler.nfe(T):3d}  {rate:8.1f} img/s")
            if name == "ddim" and peer_rate is not None:
                theirs = {p: peer_rate(nfe, p) for p in settings}
                for _ in range(rounds - 1):
                    rate = max(rate, images_per_s(lambda: module.sample(batch, sampler=sampler, seed=0,
                                                                        batch_size=batch), batch, device, repeats))
                    theirs = {p: max(r, peer_rate(nfe, p)) for p, r in theirs.items()}
                out["difflab"][-1]["images_per_s"] = rate
                out["ddim_vs_diffusers"].append({"nfe": nfe, "difflab": rate, "diffusers": theirs})
                if compile_ddim:
                    draw = lambda: module.sample(batch, sampler=sampler, seed=0, batch_size=batch,  # noqa: E731
                                                 compile=True)
                    if "compile_s" not in out:
                        out["compile_s"] = time_steps(draw, 0, 1, device)[0]
                    out["ddim_vs_diffusers"][-1]["difflab_compiled"] = images_per_s(draw, batch, device, repeats)
                    progress(f"  ddim compiled    NFE {nfe:3d}  "
                             f"{out['ddim_vs_diffusers'][-1]['difflab_compiled']:8.1f} img/s")
                for p, r in theirs.items():
                    progress(f"  diffusers ddim   NFE {nfe:3d}  {r:8.1f} img/s ({p})")
    return out


def peer_ddim(model_cfg, shape, batch: int, device, repeats: int, out: dict, precisions: list[str]):
    """rate(nfe, precision) -> images/s of diffusers' DDIM loop on the UNet2DModel shaped like model_cfg, under
    the autocast of `precision` (warmed up in each of `precisions`)."""
    unet = peer.peer_unet(model_cfg, shape[0], shape[-1]).to(device).eval().to(memory_format=peer.SAMPLE_FORMAT)
    out["params_diffusers"] = sum(p.numel() for p in unet.parameters())
    out["layout_diffusers"] = layout(unet)
    scheduler = peer.ddpm_scheduler()  # linear betas 1e-4..0.02 over 1000 steps: difflab's default schedule
    g = torch.Generator(device=device)

    def draw(n, precision):
        peer.ddim_sample(unet, scheduler, batch, n, shape, g.manual_seed(0), lambda: autocast(device, precision))
        sync(device)

    for p in precisions:
        draw(2, p)  # warm-up
    return lambda nfe, precision: images_per_s(lambda: draw(nfe, precision), batch, device, repeats)
