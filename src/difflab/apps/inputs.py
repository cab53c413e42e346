"""The inputs of `difflab-apply`: a split of the checkpoint's own data, or image files, as an Observation."""

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from difflab.apps.result import Observation
from difflab.build import instantiate
from difflab.errors import ConfigError

SPLITS = ("test", "val", "train")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def dataset_for(cfg: DictConfig, module):
    """The checkpoint's data (all classes unless input_classes says otherwise), set up."""
    data_cfg = OmegaConf.create(module.hparams.run_config["data"])
    data_cfg.classes = cfg.get("input_classes")
    if cfg.get("data_root"):
        data_cfg.root = cfg.data_root
    datamodule = instantiate(data_cfg)
    datamodule.setup()
    return datamodule


def read_images(path: Path) -> torch.Tensor:
    """One image file, or every image in a folder (sorted by name), as [N x C x H x W] in [-1, 1]."""
    from torchvision.io import ImageReadMode, read_image

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"input={path} holds no images; allowed: a .png/.jpg file or a folder of them")
    images = []
    for f in files:
        try:
            images.append(read_image(str(f), ImageReadMode.UNCHANGED).float() / 127.5 - 1)
        except RuntimeError as e:
            raise ConfigError(f"input image {f} cannot be read ({str(e).splitlines()[0]})") from None
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise ConfigError(f"input={path} mixes image shapes {sorted(shapes)}; allowed: images of one size")
    return torch.stack(images)


def load_observation(cfg: DictConfig, module, task) -> Observation:
    """Inputs as the task expects them: clean images it degrades itself (reference known), or degraded ones."""
    source = str(cfg.input)
    if source in SPLITS:
        if cfg.degraded:
            raise ConfigError(f"degraded=true needs input=PATH to your degraded images; input={source} is clean data")
        datamodule = dataset_for(cfg, module)
        dataset = {"test": datamodule.test_set, "val": datamodule.val_set, "train": datamodule.train_set}[source]
        n = len(dataset) if cfg.num_images is None else min(cfg.num_images, len(dataset))
        items = [dataset[i] for i in range(n)]
        x, y = torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items])
        return Observation(x=x, reference=x, labels=y, seed=cfg.seed)
    path = Path(source).expanduser()
    if not path.exists():
        raise ConfigError(f"input={source} does not exist; allowed: {', '.join(SPLITS)} or an image file/folder")
    x = read_images(path)
    if cfg.num_images is not None:
        x = x[: cfg.num_images]
    expected = tuple(module.image_shape)
    if cfg.degraded and hasattr(task, "observed_shape"):
        expected = task.observed_shape(expected)
    if tuple(x.shape[1:]) != expected:
        c, h, w = x.shape[1:]
        raise ConfigError(f"input={source} has {c} channel(s) at {w}x{h} but the task needs {expected[0]} channel(s) "
                          f"at {expected[2]}x{expected[1]}" + (" (the model's size / task.factor)" if cfg.degraded
                                                              and expected != tuple(module.image_shape) else ""))
    return Observation(x=x, reference=None if cfg.degraded else x, seed=cfg.seed)
