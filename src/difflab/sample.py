"""sample(cfg): draw images from a trained checkpoint and write a grid and the samples."""

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig

from difflab.build import module_from_checkpoint, pick_device, sampler_for
from difflab.callbacks.images import save_grid, to_unit
from difflab.compile import check_compiler, compile_mode
from difflab.errors import ConfigError
from difflab.precision import choose_precision
from difflab.sampling.generate import check_num_samples, check_temperature


def class_labels(classes, num_classes: int | None, per_class: int) -> torch.Tensor | None:
    """Labels [len(classes) * per_class], `per_class` of each class in turn, for guidance.classes: null (no
    labels), `all` (0..num_classes-1) or a list of labels. Ranges are checked by sampling.generate.check_labels."""
    if classes is None:
        return None
    if classes == "all":
        if num_classes is None:
            raise ConfigError("guidance.classes=all needs a class-conditional model (model.num_classes set); "
                              "this checkpoint is unconditional")
        classes = range(num_classes)
    elif not (isinstance(classes, ListConfig | list | tuple) and len(classes) > 0
              and all(isinstance(c, int) and not isinstance(c, bool) for c in classes)):
        raise ConfigError(f"guidance.classes={classes} is invalid; allowed: null, all, or a list of class labels "
                          "such as [0,1,2]")
    return torch.tensor(list(classes)).repeat_interleave(per_class)


def sample(cfg: DictConfig) -> Path:
    """Write grid.png and samples.npz (uint8 images [N x H x W x C] and the float samples) to cfg.paths.output_dir.

    With guidance.classes, num_samples images are drawn per class, one grid row per class, and samples.npz also
    holds their `labels`; guidance.scale guides them (classifier-free guidance, difflab.diffusion.guidance).
    """
    check_temperature(cfg.temperature)
    check_num_samples(cfg.num_samples)
    compile = compile_mode(cfg.get("compile"), "compile")
    guidance = cfg.get("guidance") or {}
    device = pick_device(cfg.device)
    check_compiler(cfg.get("compile"), device.type, "compile")
    precision = choose_precision(cfg.get("precision", "auto"), device, key="precision")
    module = module_from_checkpoint(cfg.ckpt, key="ckpt", precision=precision, device=device).to(device)
    sampler = sampler_for(module, cfg.get("sampler"))
    y = class_labels(guidance.get("classes"), module.num_classes, cfg.num_samples)
    num = cfg.num_samples if y is None else len(y)
    x = module.sample(
        num, sampler=sampler, temperature=cfg.temperature, seed=cfg.seed, y=y, guidance_scale=guidance.get("scale"),
        batch_size=min(cfg.batch_size, num), progress=True, compile=compile,
    ).cpu()
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_grid(x, out / "grid.png", nrow=None if y is None else cfg.num_samples)
    images = (to_unit(x) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    labels = {} if y is None else {"labels": y.numpy()}
    np.savez_compressed(out / "samples.npz", images=images, samples=x.numpy(), **labels)
    print(f"wrote {len(x)} samples to {out / 'samples.npz'} and a grid to {out / 'grid.png'}")
    return out
