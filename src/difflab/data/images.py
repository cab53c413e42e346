"""Image datasets in the model's range: [C x H x W] float32 in [-1, 1] with an int64 label."""

import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

# ITU-R BT.601 luma, the weights PIL uses for "L"; they sum to 1, so [-1, 1] stays [-1, 1].
LUMA = torch.tensor([0.299, 0.587, 0.114])


class TensorImages(Dataset):
    """Pixels held in memory as integers [N x C x H x W] in 0..max_value; scaled to [-1, 1] per item."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor, max_value: int = 255) -> None:
        assert pixels.ndim == 4 and len(pixels) == len(labels), (pixels.shape, labels.shape)
        self.pixels, self.labels, self.max_value = pixels, labels.long(), max_value

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pixels[i].float() * (2 / self.max_value) - 1, self.labels[i]


def fit_image(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """[C x h x w] -> [channels x size x size]: gray<->RGB, shorter side resized (antialiased), centre crop."""
    if x.shape[0] != channels:
        x = x.repeat(3, 1, 1) if channels == 3 else torch.einsum("c,chw->hw", LUMA, x)[None]
    if x.shape[-2:] != (size, size):
        x = TF.center_crop(TF.resize(x, [size], antialias=True), [size, size]).clamp(-1, 1)
    return x


class Shaped(Dataset):
    """`dataset` with every image passed through fit_image, so batches stack into [N x C x H x W]."""

    def __init__(self, dataset: Dataset, channels: int, size: int) -> None:
        self.dataset, self.channels, self.size = dataset, channels, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.dataset[i]
        return fit_image(x, self.channels, self.size).contiguous(), torch.as_tensor(y, dtype=torch.long)
