"""Any folder of images, searched recursively; class labels from subfolder names when there are any."""

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from difflab.data.sampler import split_indices
from difflab.errors import ConfigError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
TEST_SEED = 0  # the test images never move with data.seed


class FolderImages(Dataset):
    """Image files decoded on access to [3 x h x w] in [-1, 1] at their own size (the datamodule fits them)."""

    def __init__(self, paths: list[Path], labels: list[int]) -> None:
        self.paths, self.labels = paths, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        try:
            with Image.open(self.paths[i]) as image:
                pixels = TF.pil_to_tensor(image.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as e:  # a damage that check_image could not see (a cut JPEG)
            raise ConfigError(damaged(self.paths[i], e)) from None
        return pixels.float() * (2 / 255) - 1, self.labels[i]


def check_image(path: Path) -> None:
    """Parse the file's structure without decoding its pixels (for PNG, every chunk and its checksum): a file that
    is not an image, or is cut short, fails here, before training, instead of in a data-loader worker mid-run."""
    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, SyntaxError, ValueError) as e:  # PIL raises SyntaxError for some broken headers
        raise ConfigError(damaged(path, e)) from None


def damaged(path: Path, e: Exception) -> str:
    return f"{path} is not a readable image ({type(e).__name__}: {e}); replace or remove it under data.root"


class Folder:
    """Every image under data.root, hidden ones (".*", e.g. macOS "._x.png") aside. If all of them sit in
    top-level subfolders, each subfolder is a class (sorted by name); otherwise every label is 0.
    A fixed `test_fraction` is held out for testing."""

    def __init__(self, *, root: str | None = None, download: bool = False, test_fraction: float = 0.1) -> None:
        # download is accepted for the common source signature; there is nothing to fetch
        if root is None:
            raise ConfigError("data.root=null; the folder source needs data.root=<a folder of images>")
        if not 0 <= test_fraction < 1:
            raise ConfigError(f"data.source.test_fraction={test_fraction} is outside [0, 1); give e.g. 0.1")
        self.root, self.test_fraction = Path(root).expanduser(), test_fraction
        if not self.root.is_dir():
            raise ConfigError(f"data.root={root} does not exist; give an existing folder of images")
        self.paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(self.root).parts))
        if not self.paths:
            raise ConfigError(f"data.root={root} holds no images ({', '.join(EXTENSIONS)}); "
                              f"give a folder with image files (subfolders are searched)")
        for path in self.paths:
            check_image(path)
        parts = [p.relative_to(self.root).parts for p in self.paths]
        labelled = all(len(q) > 1 for q in parts)  # every image inside a top-level subfolder
        self.classes = sorted({q[0] for q in parts}) if labelled else []
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = [index[q[0]] if labelled else 0 for q in parts]
        self.num_classes = max(len(self.classes), 1)

    def fetch(self) -> None:
        """Nothing to fetch: the images are already on disk."""

    def load(self) -> tuple[FolderImages, FolderImages]:
        train, test = split_indices(len(self.paths), self.test_fraction, TEST_SEED)
        return self._subset(train), self._subset(test)

    def _subset(self, indices: list[int]) -> FolderImages:
        return FolderImages([self.paths[i] for i in indices], [self.labels[i] for i in indices])
