"""Fashion-MNIST (Zalando, 28x28 gray, 10 classes) from data.root, Debian's package, or a download."""

from pathlib import Path

import torchvision

from difflab.data.idx import read_idx
from difflab.data.images import TensorImages
from difflab.data.torchvision_sets import download, resolve_root
from difflab.errors import ConfigError

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"  # apt install fashion-mnist
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder`, each gzipped or plain, or None if one is missing."""
    found = {}
    for stem in STEMS:
        found[stem] = next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)
        if found[stem] is None:
            return None
    return found


class FashionMNIST:
    """Reads the IDX files itself: from data.root (flat, or torchvision's ROOT/FashionMNIST/raw), else from
    `system_dir` (Debian's fashion-mnist package), else from the download folder; [1 x 28 x 28]."""

    num_classes = 10

    def __init__(self, *, root: str | None = None, download: bool = False, system_dir: str = DEBIAN_DIR) -> None:
        self.root, self.download, self.system_dir = resolve_root(root), download, system_dir
        given = [Path(root).expanduser()] if root is not None else [Path(system_dir)]
        self.folders = [*given, self.root / "FashionMNIST" / "raw"]
        if self.files() is None and not download:
            raise ConfigError(
                f"fashion_mnist: {STEMS[0]}.gz and the other three IDX files are in none of "
                f"{', '.join(map(str, self.folders))}; set data.root to a folder holding them, install Debian's "
                f"fashion-mnist package (files in {system_dir}), or set data.download=true")

    def files(self) -> dict[str, Path] | None:
        return next(filter(None, map(find_files, self.folders)), None)

    def fetch(self) -> None:
        if self.download and self.files() is None:
            download("fashion_mnist", self.root, lambda: torchvision.datasets.FashionMNIST(self.root, download=True))

    def load(self) -> tuple[TensorImages, TensorImages]:
        files = self.files()
        if files is None:  # download=true but prepare_data() was not run
            raise ConfigError(f"fashion_mnist: no IDX files in {self.folders}; with data.download=true "
                              f"call prepare_data() before setup()")
        return tuple(TensorImages(read_idx(files[f"{split}-images-idx3-ubyte"])[:, None],
                                  read_idx(files[f"{split}-labels-idx1-ubyte"]))
                     for split in ("train", "t10k"))
