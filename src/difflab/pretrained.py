"""Pretrained folders: what `src/export.py` writes, and what ckpt=DIR and init_weights=DIR read. Nothing is unpickled.

A difflab export holds difflab.json (the run's config and image shape: what rebuilds the DiffusionModule, as a
checkpoint's hyper-parameters do) and the network's EMA weights as safetensors: model.safetensors, or, for
model=diffusers_unet, the diffusers pipeline beside it (model_index.json, unet/, scheduler/).
init_weights=DIR also takes what diffusers saves: a UNet2DModel folder, or a pipeline folder with unet/.
"""

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from difflab.errors import ConfigError

CONFIG = "difflab.json"
WEIGHTS = "model.safetensors"
FORMAT = 1  # raised when a reader of older folders would have to do something else
UNET_PREFIX = "net.unet."  # where a UNet2DModel's weights sit in the module: DiffusionModule.net, DiffusersUNet.unet
ALLOWED = ("allowed: a folder src/export.py wrote (difflab.json), a diffusers UNet2DModel folder (config.json + "
           "diffusion_pytorch_model.safetensors) or a diffusers pipeline folder with unet/")


def safetensors_torch():
    try:
        import safetensors.torch
    except ImportError:
        raise ConfigError("difflab exports are safetensors files: pip install safetensors") from None
    return safetensors.torch


def check_target(out, overwrite: bool = False, key: str = "out") -> Path:
    """Refuse, in one line, a file or a non-empty folder; with `overwrite`, an earlier export (difflab.json) is
    replaced, but never another folder's files."""
    out = Path(str(out)).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{key}={out} is a file; allowed: a new or empty folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{key}={out} exists and is not empty; allowed: a new or empty folder, or overwrite=true "
                              "to replace an earlier export")
        if not (out / CONFIG).is_file():
            raise ConfigError(f"{key}={out} is not empty and holds no {CONFIG}; overwrite=true replaces earlier "
                              "exports only, so choose a new or empty folder")
    return out


@contextmanager
def atomic_folder(out, overwrite: bool = False, key: str = "out"):
    """Yield a new temporary sibling of `out` to write into; it becomes `out` only when the block succeeds and is
    removed when it fails, so `out` never holds half an export (check_target says which `out` are refused)."""
    out = check_target(out, overwrite, key)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise ConfigError(f"{key}={out} cannot be written ({e.strerror or e})") from None
    try:
        yield tmp
        if out.is_dir() and any(out.iterdir()):
            old = tmp.with_suffix(".old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)  # over an empty folder too
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_config(module, folder) -> None:
    """difflab.json: the run's resolved config and the image shape, which rebuild `module`."""
    meta = {"format": FORMAT, "image_shape": list(module.image_shape), "run_config": module.hparams.run_config}
    (Path(folder) / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")


def write_weights(module, folder) -> None:
    """model.safetensors: the module's weights (the EMA average, as module_from_checkpoint loads them)."""
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    safetensors_torch().save_file(state, str(Path(folder) / WEIGHTS), metadata={"format": f"difflab-{FORMAT}"})


def read_folder(path, key: str = "ckpt") -> tuple[dict, list, dict]:
    """(run config, image shape, module state dict) of a folder src/export.py wrote."""
    folder = Path(str(path)).expanduser()
    file = folder / CONFIG
    if not file.is_file():
        raise ConfigError(f"{key}={path} is a folder without {CONFIG}, so not a difflab export; allowed: a .ckpt "
                          "written by training or a folder src/export.py wrote")
    try:
        meta = json.loads(file.read_text())
    except ValueError as e:
        raise ConfigError(f"{key}={path}: {CONFIG} is not JSON ({e})") from None
    if not (isinstance(meta, dict) and meta.get("format") == FORMAT and isinstance(meta.get("run_config"), dict)
            and isinstance(meta.get("image_shape"), list)):
        raise ConfigError(f"{key}={path}: {CONFIG} is not a difflab export of format {FORMAT} (it needs format, "
                          "run_config and image_shape)")
    return meta["run_config"], meta["image_shape"], read_weights(folder, key)


def read_weights(folder: Path, key: str) -> dict:
    if (folder / WEIGHTS).is_file():
        try:
            return safetensors_torch().load_file(str(folder / WEIGHTS))
        except Exception as e:  # truncated or not safetensors at all
            raise ConfigError(f"{key}={folder}: {WEIGHTS} is not readable ({type(e).__name__}: {e})") from None
    if (folder / "unet").is_dir():
        from difflab.nets.diffusers_unet import read_unet

        return prefixed(read_unet(folder / "unet", key).state_dict())
    raise ConfigError(f"{key}={folder} holds no weights: neither {WEIGHTS} nor a diffusers unet/ folder")


def prefixed(unet_state: dict) -> dict:
    return {UNET_PREFIX + k: v for k, v in unet_state.items()}


def init_state(module, path, key: str = "init_weights") -> dict:
    """The state dict for `module` that the folder `path` holds: a difflab export, or a diffusers UNet2DModel
    (alone or in a pipeline's unet/) whose config must equal module.net's, else a ConfigError naming the keys."""
    from difflab.nets.diffusers_unet import DiffusersUNet, check_unet_folder, read_unet

    folder = Path(str(path)).expanduser()
    if (folder / CONFIG).is_file():
        return read_folder(folder, key)[2]
    unet = folder / "unet" if (folder / "unet" / "config.json").is_file() else folder
    check_unet_folder(unet, key, ALLOWED)
    if not isinstance(module.net, DiffusersUNet):
        raise ConfigError(f"{key}={path} holds a diffusers UNet2DModel; it fits model=diffusers_unet only")
    loaded = read_unet(unet, key)
    differences = module.net.differences(loaded.config)
    if differences:
        raise ConfigError(f"{key}={path} does not match this run's model=diffusers_unet: {'; '.join(differences)} "
                          "(set them with model.<key>; sample_size and in_channels follow data.image_size and "
                          "data.channels)")
    return prefixed(loaded.state_dict())
