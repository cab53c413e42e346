"""FID-domain: a small classifier trained on the dataset itself, whose penultimate layer replaces Inception's
pool features for FID/KID on data where Inception means nothing (8x8 digits, 28x28 gray clothes).

FID: Heusel et al. 2017, https://arxiv.org/abs/1706.08500; KID: Binkowski et al. 2018,
https://arxiv.org/abs/1801.01401. Weights are trained by `python src/train_features.py data=<name>` and shipped
in `difflab/metrics/weights/<name>.pt`.
"""

import pickle
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from difflab.checkpoint import atomic_torch_save
from difflab.data.images import LUMA
from difflab.errors import ConfigError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CONFIG_KEYS = ("in_channels", "image_size", "num_classes", "width", "num_features")


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    # GroupNorm, not BatchNorm: an image's features must not depend on the rest of its batch.
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.SiLU())


class DomainClassifier(nn.Module):
    """Three conv blocks (width, 2 width, 4 width; max-pooled twice), a 2x2 average pool, a penultimate layer of
    `num_features` (the FID/KID features) and a linear classifier.

    Input [N x C x H x W] in [-1, 1]; other sizes are resized to `image_size` (bilinear, antialiased), and gray
    and RGB are converted to `in_channels` the way the data layer does (repeat / ITU-R 601 luma).
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int = 32,
                 num_features: int = 128) -> None:
        super().__init__()
        for key, value in (("in_channels", in_channels), ("image_size", image_size), ("num_classes", num_classes),
                           ("width", width), ("num_features", num_features)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"classifier.{key}={value} must be an integer >= 1")
        if width % 8:
            raise ConfigError(f"classifier.width={width} must be a multiple of 8 (GroupNorm uses 8 groups)")
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.width, self.num_features = width, num_features
        self.body = nn.Sequential(
            conv_block(in_channels, width), nn.MaxPool2d(2, ceil_mode=True),
            conv_block(width, 2 * width), nn.MaxPool2d(2, ceil_mode=True),
            conv_block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(16 * width, num_features), nn.SiLU(),
        )
        self.dropout = nn.Dropout(0.2)  # on the features, in training only
        self.head = nn.Linear(num_features, num_classes)

    @property
    def config(self) -> dict[str, int]:
        """The constructor arguments, as stored beside the weights."""
        return {key: getattr(self, key) for key in CONFIG_KEYS}

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """[N x C x H x W] in [-1, 1] -> [N x in_channels x image_size x image_size]."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images [N x C x H x W] with C in (1, 3), got shape {tuple(x.shape)}")
        x = x.float()
        if x.shape[1] != self.in_channels:
            x = x.repeat(1, 3, 1, 1) if self.in_channels == 3 else torch.einsum("c,nchw->nhw", LUMA.to(x), x)[:, None]
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                              align_corners=False)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations [N x num_features] of images [N x C x H x W] in [-1, 1]."""
        return self.body(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N x num_classes] of images [N x C x H x W] in [-1, 1]."""
        return self.head(self.dropout(self.features(x)))


class DomainFeatures(nn.Module):
    """`feature=` for torchmetrics' FrechetInceptionDistance / KernelInceptionDistance: images [N x C x H x W]
    in [-1, 1] (passed to `update` as they are, with normalize=False) -> float32 features [N x num_features].
    Always in eval mode and without gradients, like torchmetrics' NoTrainInceptionV3."""

    def __init__(self, classifier: DomainClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features: int = classifier.num_features

    def train(self, mode: bool = True) -> "DomainFeatures":
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x).float()


def shipped_names() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def resolve_weights(name_or_path, key: str) -> Path:
    """A shipped name (digits, fashion_mnist, ...) -> its file in WEIGHTS_DIR; anything path-like -> that path."""
    text = str(name_or_path)
    allowed = (f"allowed: {', '.join(shipped_names()) or '(none shipped)'} (shipped), or the path of a .pt file "
               f"written by src/train_features.py")
    if name_or_path is None or not text:
        raise ConfigError(f"{key} is not set (it names no data set); {allowed}")
    if "/" in text or text.endswith(".pt") or isinstance(name_or_path, Path):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"{key}={text} does not exist or is not a file; {allowed}")
        return path
    path = WEIGHTS_DIR / f"{text}.pt"
    if not path.is_file():
        raise ConfigError(f"{key}={text} has no shipped weights (no {path}); {allowed}; "
                          f"`python src/train_features.py data={text}` trains and writes them")
    return path


def load_domain_classifier(name_or_path, *, key: str = "metrics.domain_weights",
                           map_location="cpu") -> DomainClassifier:
    """The classifier saved by save_domain_classifier, in eval mode, read weights-only (a file cannot run code).
    `name_or_path`: a dataset name with shipped weights (digits, fashion_mnist) or a path to a .pt file."""
    path = resolve_weights(name_or_path, key)
    if not zipfile.is_zipfile(path):  # else torch.load reads it as a legacy pickle and blames "weights only"
        raise ConfigError(f"{key}={name_or_path} is not a readable weights file (not a torch.save archive, or "
                          f"truncated); give a .pt file written by src/train_features.py")
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{key}={name_or_path} was refused: it holds objects other than tensors and plain data, "
                          f"and weights are loaded weights-only so a file cannot run code ({first})") from None
    except Exception as e:  # truncated, not a zip/pickle, ...
        raise ConfigError(f"{key}={name_or_path} is not a readable weights file ({type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
    config = saved.get("config") if isinstance(saved, dict) else None
    if not isinstance(config, dict) or not isinstance(saved.get("state_dict"), dict) \
            or any(k not in config for k in CONFIG_KEYS):
        raise ConfigError(f"{key}={name_or_path} is not a domain classifier file: it needs 'config' (with "
                          f"{', '.join(CONFIG_KEYS)}) and 'state_dict', as written by src/train_features.py")
    try:
        classifier = DomainClassifier(**{k: config[k] for k in CONFIG_KEYS})
    except ConfigError as e:
        raise ConfigError(f"{key}={name_or_path} holds a config no classifier can be built from: {e}") from None
    try:
        classifier.load_state_dict(saved["state_dict"])
    except RuntimeError as e:
        raise ConfigError(f"{key}={name_or_path} does not fit the classifier its config describes: "
                          f"{str(e).splitlines()[0]}") from None
    classifier.saved_config = dict(config)  # dataset, test_accuracy, ... as recorded at training time
    return classifier.eval()


def save_domain_classifier(classifier: DomainClassifier, path, **extra_config) -> None:
    """Write {"config": constructor arguments + extra_config, "state_dict": CPU tensors} atomically to `path`."""
    state = {k: v.detach().cpu().clone() for k, v in classifier.state_dict().items()}
    atomic_torch_save({"config": {**classifier.config, **extra_config}, "state_dict": state}, path)
