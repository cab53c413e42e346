"""sample(cfg): draw images from a trained checkpoint and write a grid and the samples."""

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from difflab.build import instantiate, module_from_checkpoint
from difflab.callbacks.images import save_grid, to_unit
from difflab.errors import ConfigError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} is not available here; allowed: auto, cpu")
    return torch.device(name)


def sample(cfg: DictConfig) -> Path:
    """Write grid.png and samples.npz (uint8 images [N x H x W x C] and the float samples) to cfg.paths.output_dir."""
    if not (isinstance(cfg.temperature, (int, float)) and cfg.temperature > 0):
        raise ConfigError(f"temperature={cfg.temperature} is invalid; allowed: a number > 0")
    if not (isinstance(cfg.num_samples, int) and cfg.num_samples >= 1):
        raise ConfigError(f"num_samples={cfg.num_samples} is invalid; allowed: an integer >= 1")
    module = module_from_checkpoint(cfg.ckpt, key="ckpt").to(pick_device(cfg.device))
    sampler = instantiate(cfg.sampler) if cfg.get("sampler") else None
    (sampler or module.sampler).check(module.timesteps)
    x = module.sample(
        cfg.num_samples, sampler=sampler, temperature=cfg.temperature, seed=cfg.seed,
        batch_size=cfg.batch_size, progress=True,
    ).cpu()
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_grid(x, out / "grid.png")
    images = (to_unit(x) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.savez_compressed(out / "samples.npz", images=images, samples=x.numpy())
    print(f"wrote {len(x)} samples to {out / 'samples.npz'} and a grid to {out / 'grid.png'}")
    return out
