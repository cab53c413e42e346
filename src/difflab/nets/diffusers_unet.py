"""diffusers' UNet2DModel as a difflab network (the optional `diffusers` extra).

The model is built from its own config keys (conf/model/diffusers_unet.yaml), so a UNet2DModel folder saved by
diffusers and the one trained here describe the same network in the same words.
"""

import inspect
import json
from pathlib import Path

import torch
from torch import nn

from difflab.errors import ConfigError
from difflab.nets.checks import check_num_classes
from difflab.nets.embeddings import class_labels

# UNet2DModel keys that difflab sets itself: from the data, and the label table from model.num_classes
SET_BY_DIFFLAB = {"sample_size": "data.image_size", "in_channels": "data.channels",
                  "out_channels": "model.out_channels", "num_class_embeds": "model.num_classes"}


def diffusers():
    """The diffusers package, or a one-line ConfigError saying how to install it."""
    try:
        import diffusers
    except ImportError:
        raise ConfigError("model=diffusers_unet needs the diffusers extra: pip install 'difflab[diffusers]'") from None
    return diffusers


def unet_keys() -> list[str]:
    return [k for k in inspect.signature(diffusers().UNet2DModel.__init__).parameters if k != "self"]


class DiffusersUNet(nn.Module):
    """UNet2DModel: x [N x C x H x W], t [N] noise level (int or float), y [N] int64 or None -> [N x out_channels x H x W].

    `unet` holds UNet2DModel's own keyword arguments (block_out_channels, layers_per_block, down_block_types, ...).
    With num_classes, the label table has num_classes + 1 rows: row num_classes is the null class that y=None and
    classifier-free guidance use, as in difflab's own nets.
    """

    def __init__(self, in_channels: int, image_size: int, *, out_channels: int | None = None,
                 num_classes: int | None = None, **unet):
        super().__init__()
        check_num_classes(num_classes)
        allowed = [k for k in unet_keys() if k not in SET_BY_DIFFLAB]
        for key in unet:
            if key not in allowed:
                raise ConfigError(f"model.{key} is not a UNet2DModel setting; allowed: {', '.join(allowed)}")
        levels = len(unet.get("block_out_channels", ())) or 4  # UNet2DModel's default has 4
        if image_size % 2 ** (levels - 1):
            raise ConfigError(f"data.image_size={image_size} is not a multiple of 2^{levels - 1}; UNet2DModel "
                              f"halves it at each of model.block_out_channels' {levels} levels but the last")
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.out_channels = in_channels if out_channels is None else out_channels
        try:
            self.unet = diffusers().UNet2DModel(
                sample_size=image_size, in_channels=in_channels, out_channels=self.out_channels,
                num_class_embeds=None if num_classes is None else num_classes + 1, **unet)
        except (ValueError, TypeError) as e:  # mismatched block lists, groups that do not divide a width, ...
            raise ConfigError(f"model=diffusers_unet: {str(e).splitlines()[0]}") from None
        # Zero output conv, as difflab's nets start: the untrained net predicts exactly 0 for any target.
        nn.init.zeros_(self.unet.conv_out.weight)
        nn.init.zeros_(self.unet.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.unet(x, t, class_labels=class_labels(t, y, self.num_classes)).sample

    def differences(self, config) -> list[str]:
        """'key: ours here, theirs in the folder' for each UNet2DModel setting in which `config` differs from this
        net's; keys only one of the two diffusers versions knows are skipped, as diffusers itself ignores them."""
        ours = settings(self.unet.config)
        return [f"{k}: {ours[k]} here, {v} in the folder" for k, v in settings(config).items()
                if k in ours and ours[k] != v]


def settings(config) -> dict:
    """A UNet2DModel config's settings (not diffusers' `_` bookkeeping) as JSON reads them back (tuples as lists),
    so that saved and built configs compare equal."""
    return json.loads(json.dumps({k: v for k, v in dict(config).items() if not k.startswith("_")}))


ALLOWED_FOLDERS = "allowed: a folder with config.json and diffusion_pytorch_model.safetensors"


def check_unet_folder(folder, key: str, allowed: str = ALLOWED_FOLDERS) -> None:
    """A one-line ConfigError unless `folder` holds a UNet2DModel's config.json and safetensors weights (a .bin file
    would be unpickled); reads no weights and needs no diffusers."""
    folder = Path(folder)
    config = folder / "config.json"
    try:
        class_name = json.loads(config.read_text()).get("_class_name") if config.is_file() else None
    except (ValueError, AttributeError):
        class_name = None
    if class_name != "UNet2DModel":
        found = "has no config.json" if not config.is_file() else f"has a config.json for {class_name!r}"
        raise ConfigError(f"{key}={folder} is not a diffusers UNet2DModel folder: it {found}; {allowed}")
    if not (folder / "diffusion_pytorch_model.safetensors").is_file():
        raise ConfigError(f"{key}={folder} has no diffusion_pytorch_model.safetensors; allowed: safetensors weights "
                          "(a .bin file would be unpickled)")


def read_unet(folder, key: str):
    """The UNet2DModel saved in `folder`, read with diffusers itself (which also converts older key names)."""
    check_unet_folder(folder, key)
    try:
        return diffusers().UNet2DModel.from_pretrained(folder, use_safetensors=True, local_files_only=True,
                                                       low_cpu_mem_usage=False)
    except Exception as e:  # diffusers' errors run over several lines
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConfigError(f"{key}={folder} is not a readable UNet2DModel ({type(e).__name__}: {first})") from None
