"""Building the parts of an experiment from its config, and a trained module back from a checkpoint."""

from collections.abc import Mapping
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from difflab.checkpoint import load_checkpoint
from difflab.errors import ConfigError
from difflab.legacy import upgrade
from difflab.module import DiffusionModule
from difflab.precision import device_type, resolve_precision
from difflab.pretrained import init_state, read_folder


def instantiate(cfg, **kwargs):
    return hydra.utils.instantiate(cfg, _convert_="all", **kwargs)


def check_compatible(net, image_shape) -> None:
    """The network must take the data's channels (and, where it is built for one, its image size)."""
    channels, size = image_shape[0], image_shape[-1]
    if getattr(net, "in_channels", channels) != channels:
        raise ConfigError(
            f"model.in_channels={net.in_channels} does not match data.channels={channels}; they must be equal"
        )
    if getattr(net, "image_size", None) not in (None, size):
        raise ConfigError(f"model.image_size={net.image_size} does not match data.image_size={size}")


def channels_last(setting, precision: str, device: str) -> bool:
    """module.channels_last: true / false, or auto = NHWC for float32 convolutions on CPU, where oneDNN's NHWC
    kernels beat NCHW; its bf16 convolutions are slower in NHWC, so they and the GPU paths keep their default
    layout (BENCHMARKS.md)."""
    if setting == "auto":
        return device == "cpu" and str(precision) in ("32", "32-true")
    if not isinstance(setting, bool):
        raise ConfigError(f"module.channels_last={setting} is not valid; allowed: auto, true, false")
    return setting


def build_module(cfg: DictConfig, image_shape, net=None, precision: str | None = None,
                 device: str | None = None) -> DiffusionModule:
    """Instantiate net, schedule, objective, sampler and optimizer from cfg and join them in a DiffusionModule.

    precision (resolved, default cfg.trainer.precision) and device ('cpu', 'cuda', ...; default the trainer's)
    decide the module's sampling precision and, with module.channels_last=auto, the memory format."""
    net = instantiate(cfg.model) if net is None else net
    check_compatible(net, image_shape)
    trainer = cfg.get("trainer") or {}
    device = device or device_type(trainer.get("accelerator", "auto"))
    precision = resolve_precision(precision or trainer.get("precision"), device)[0]
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    make_module = instantiate(cfg.module, _partial_=True)  # objects passed to instantiate would become configs
    return make_module(
        precision=precision,
        channels_last=channels_last(cfg.module.get("channels_last", False), precision, device),
        net=net,
        schedule=instantiate(cfg.schedule),
        objective=instantiate(cfg.objective),
        sampler=instantiate(cfg.sampler),
        optimizer=instantiate(cfg.optimizer),
        lr_scheduler=instantiate(cfg.lr_scheduler) if cfg.get("lr_scheduler") else None,
        image_shape=tuple(image_shape),
        run_config=config,
    )


def sampler_for(module: DiffusionModule, sampler=None):
    """The sampler an entry point runs, checked against the module's timesteps before any work: `sampler` (a config
    to instantiate, or a sampler), or the module's own where it is None."""
    sampler = module.sampler if sampler is None else instantiate(sampler) if isinstance(sampler, Mapping) else sampler
    sampler.check(module.timesteps)
    return sampler


def pick_device(name: str) -> torch.device:
    """The device of sample / apply's `device=`: auto = CUDA where there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} is not available here; allowed: auto, cpu")
    return torch.device(name)


def module_from_checkpoint(path, key: str = "ckpt", map_location="cpu", precision: str = "auto",
                           device="cpu") -> DiffusionModule:
    """Rebuild the module a checkpoint was trained with and load its (EMA) weights, for inference on `device`.

    precision ('auto': bf16 where `device` has bf16 units, else 32; or one of trainer.precision's values) is
    this machine's choice, not the training machine's; the memory format follows module.channels_last.
    `path` may also be a folder src/export.py wrote (difflab/pretrained.py), which holds the EMA weights alone."""
    if Path(str(path)).expanduser().is_dir():
        run_config, image_shape, state = read_folder(path, key)
    else:
        ckpt = load_checkpoint(path, key=key, map_location=map_location)
        hparams = ckpt.get("hyper_parameters", {})
        if not hparams.get("run_config") or "image_shape" not in hparams:
            raise ConfigError(f"{key}={path} was not written by difflab training: it holds no difflab config")
        run_config, image_shape, state = hparams["run_config"], hparams["image_shape"], ckpt["state_dict"]
    cfg = OmegaConf.create(upgrade(run_config))
    device = device_type(device)
    precision, _ = resolve_precision(precision, device)
    module = build_module(cfg, image_shape, precision=precision, device=device)
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ConfigError(f"{key}={path} does not fit the model in its own config: {str(e).splitlines()[0]}") from None
    return module.eval()


def load_init_weights(module: DiffusionModule, path, key: str = "init_weights") -> int:
    """Start a new run from a checkpoint's raw training weights (fine-tuning, or a longer run on a fresh schedule).

    Unlike resuming (ckpt_path), the optimizer, learning-rate schedule, step count and EMA start afresh; the EMA
    warms up from these weights. Returns the checkpoint's global step (0 for a folder).
    `path` may also be a folder: an export (its EMA weights) or a diffusers UNet2DModel (difflab/pretrained.py)."""
    if Path(str(path)).expanduser().is_dir():
        state, step = init_state(module, path, key), 0
    else:
        ckpt = load_checkpoint(path, key=key)
        state = ckpt.get("current_model_state") or ckpt["state_dict"]  # raw weights; EMA-only files give the average
        step = int(ckpt.get("global_step", 0))
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ConfigError(
            f"{key}={path} does not fit this run's model ({str(e).splitlines()[0]}); "
            "the model group and its options must match the checkpoint's"
        ) from None
    return step
