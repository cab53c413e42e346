"""Quality per compute for bench/throughput.py (part 4, `--quality MINUTES`): difflab's
experiment=fashion_mnist_unet and the diffusers loop each train for the same wall-clock budget on the same
Fashion-MNIST training images, then FID-domain of DDIM-50 samples of each against the test set.

Like for like: the same U-Net layout (throughput_peer.peer_unet of the experiment's model), the cosine noise
schedule (diffusers' squaredcos_cap_v2 is the same formula), the experiment's AdamW, lr schedule, batch, step cap
(trainer.max_steps), grad-norm clip and EMA (diffusers' EMAModel without `use_ema_warmup` uses difflab's
min(decay, (1 + n) / (10 + n))). difflab's sample grids are off, as in part 2; its validation stays on.

Precision (`--quality-precision`, a row of throughput_config.PRECISIONS) holds for training and for the FID
samples alike. auto (the default) is each one's default: difflab's trainer.precision=auto and its sample
command's precision=auto (module_from_checkpoint), diffusers float32 (train_unconditional.py's --mixed_precision
no). fp32 and bf16 are like for like.
"""

import json
import tempfile
import time
from pathlib import Path

import torch

from difflab.build import instantiate, module_from_checkpoint
from difflab.metrics.evaluator import real_images
from difflab.train import train

import throughput_peer as peer
from common import fid_evaluator
from throughput_config import (LIGHTNING_OFF, PRECISIONS, compose_train, fashion_available, lightning_overrides,
                               resolved, timer_overrides)
from throughput_measure import autocast, sync
from throughput_train import batches

EXPERIMENT = ["experiment=fashion_mnist_unet", "sampler=ddim", "sampler.steps=50"]


def train_diffusers(cfg, datamodule, budget_s: float, device, precision: str):
    """The diffusers loop for budget_s seconds (or the experiment's max_steps) under the autocast of `precision`
    (resolved): (EMA UNet, scheduler, steps, seconds)."""
    from diffusers.training_utils import EMAModel

    torch.manual_seed(cfg.seed)
    c, size, _ = datamodule.image_shape
    unet = peer.peer_unet(cfg.model, c, size).to(device)
    scheduler = peer.ddpm_scheduler("squaredcos_cap_v2")
    optimizer = instantiate(cfg.optimizer)(unet.parameters())
    lr = instantiate(cfg.lr_scheduler)(optimizer)
    ema = EMAModel(unet.parameters(), decay=cfg.callbacks.ema.decay, use_ema_warmup=False)
    step = peer.train_step(unet, scheduler, optimizer, lambda: autocast(device, precision),
                           cfg.trainer.gradient_clip_val)
    data = batches(datamodule.train_set, cfg.data.batch_size, device)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < budget_s and steps < cfg.trainer.max_steps:
        step(next(data))
        lr.step()
        ema.step(unet.parameters())
        steps += 1
    sync(device)
    seconds = time.perf_counter() - t0
    ema.copy_to(unet.parameters())
    return unet.eval().to(memory_format=peer.SAMPLE_FORMAT), scheduler, steps, seconds


def quality(minutes: float, num_samples: int, device, precision: str, batch_size: int = 256,
            progress=print) -> dict:
    """{"difflab": {...}, "diffusers": {...} or absent, budget}: steps trained, seconds, FID-domain +- std, for
    the precision row `precision`."""
    if not fashion_available():
        return {"skipped": "Fashion-MNIST IDX files missing (make data)"}
    budget = 60 * minutes
    row, res = PRECISIONS[precision], resolved(precision, device.type)
    out = {"minutes": minutes, "num_samples": num_samples, "precision": precision, "resolved": res,
           "sampler": "ddim, 50 steps"}
    with tempfile.TemporaryDirectory(prefix="difflab-quality-") as tmp:
        cfg = compose_train(*EXPERIMENT, *LIGHTNING_OFF, *timer_overrides(tmp),
                            *lightning_overrides(row.difflab, device=str(device), max_time_s=budget), output_dir=tmp)
        progress(f"  difflab: training for {budget:.0f} s")
        train(cfg)
        record = json.loads((Path(tmp) / "steps.json").read_text())
        module = module_from_checkpoint(Path(tmp) / "checkpoints" / "last.ckpt", precision=row.difflab,
                                        device=device.type).to(device)  # EMA weights
    # from Lightning's train start (where trainer.max_time counts from) to the last step's end
    out["difflab"] = {"steps": len(record["batch_ends"]), "train_s": record["batch_ends"][-1] - record["train_start"]}

    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    num_real = len(datamodule.test_set)
    evaluator = fid_evaluator("fashion_mnist", num_samples, num_real, seed=0).to(device)
    for x in real_images(datamodule.test_set, range(num_real), batch_size):
        evaluator.update_real(x.to(device))
    t0 = time.perf_counter()
    evaluator.update_fake(module, range(num_samples), sampler=instantiate(cfg.sampler), batch_size=batch_size)
    out["difflab"].update(sample_s=time.perf_counter() - t0, **evaluator.compute())
    progress(f"  difflab: {out['difflab']}")
    if not peer.available():
        return out

    progress(f"  diffusers: training for {budget:.0f} s")
    unet, scheduler, steps, seconds = train_diffusers(cfg, datamodule, budget, device, res["diffusers"])
    out["diffusers"] = {"steps": steps, "train_s": seconds}
    g, t0 = torch.Generator(device=device).manual_seed(0), time.perf_counter()
    for lo in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - lo)
        evaluator.update_images(peer.ddim_sample(unet, scheduler, n, 50, datamodule.image_shape, g,
                                                 lambda: autocast(device, res["diffusers"])))
    out["diffusers"].update(sample_s=time.perf_counter() - t0, **evaluator.compute())
    progress(f"  diffusers: {out['diffusers']}")
    return out
