"""Feature extractors for FID/KID: nn.Modules that take images in [-1, 1] and return [N x num_features].

`inception`: the standard InceptionV3 pool features (torch-fidelity's port of the TF FID network, through
torchmetrics); `domain`: the penultimate layer of a small classifier difflab trains on the dataset itself.
Each module has `name` (for labels such as "FID-domain") and `num_features` (so torchmetrics skips a dummy pass).
"""

from pathlib import Path

import torch
from torch import nn

from difflab.errors import ConfigError

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


def _cached_inception() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def _check_weights_only(path: Path, key: str) -> None:
    """Refuse files whose pickle holds anything but tensors and plain data, before a library unpickles them."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"{key}={path} is not a weights-only file of tensors ({type(e).__name__})") from None


class InceptionFeatures(nn.Module):
    """InceptionV3 2048-d pool features of images in [-1, 1]; quantised to uint8 first (the standard FID input),
    grayscale repeated to 3 channels; torchmetrics resizes to 299x299."""

    name = "inception"
    num_features = 2048

    def __init__(self, weights: str | None = None):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        path = self._resolve(weights)
        try:
            self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                          feature_extractor_weights_path=None if path is None else str(path))
        except (OSError, RuntimeError) as e:  # no network (URLError is an OSError), or a wrong state dict
            raise ConfigError(
                "metrics/features=inception needs the InceptionV3 FID weights and could not get them "
                f"({type(e).__name__}: {str(e).splitlines()[0][:120]}); either run once online (they are cached in "
                f"{_cached_inception().parent}) or set metrics.inception_weights=PATH to {INCEPTION_FILE}"
            ) from None

    @staticmethod
    def _resolve(weights) -> Path | None:
        if weights is not None:
            path = Path(str(weights)).expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"metrics.inception_weights={weights} does not exist; give the path of {INCEPTION_FILE}, "
                    "or leave it null to download the weights when online"
                )
        elif _cached_inception().is_file():
            path = _cached_inception()
        else:
            return None  # torch-fidelity downloads them (online) or fails (offline), see __init__
        _check_weights_only(path, "metrics.inception_weights")
        return path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return self.net(x).reshape(x.shape[0], -1)


def domain_features(weights: str):
    """Penultimate features of difflab's classifier for a dataset (a shipped name such as `digits`, or a path)."""
    from difflab.metrics.domain import DomainFeatures, load_domain_classifier

    features = DomainFeatures(load_domain_classifier(weights))
    features.name = "domain"
    return features
