"""Inpainting masks: bool [N x 1 x H x W], True where a pixel is known and False where it is to be filled.

Each mask is a small frozen config (conf/task/mask/*.yaml); call mask(n, size, seed) -> the masks."""

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from difflab.errors import ConfigError


@dataclass(frozen=True)
class CentreBox:
    """A centred square hole whose side is `fraction` of the image side."""

    fraction: float = 0.5

    def __post_init__(self):
        if not 0 < self.fraction < 1:
            raise ConfigError(f"mask.fraction={self.fraction} is invalid; allowed: 0 < fraction < 1")

    def __call__(self, n: int, size: int, seed: int = 0) -> torch.Tensor:
        side = max(1, round(size * self.fraction))
        lo = (size - side) // 2
        known = torch.ones(n, 1, size, size, dtype=torch.bool)
        known[..., lo : lo + side, lo : lo + side] = False
        return known


@dataclass(frozen=True)
class Half:
    """One half of the image missing: side = right | left | bottom | top."""

    side: str = "right"

    def __post_init__(self):
        if self.side not in ("right", "left", "bottom", "top"):
            raise ConfigError(f"mask.side={self.side!r} is invalid; allowed: right, left, bottom, top")

    def __call__(self, n: int, size: int, seed: int = 0) -> torch.Tensor:
        known = torch.ones(n, 1, size, size, dtype=torch.bool)
        half = size // 2
        region = {"right": (..., slice(None), slice(half, None)), "left": (..., slice(None), slice(0, half)),
                  "bottom": (..., slice(half, None), slice(None)), "top": (..., slice(0, half), slice(None))}
        known[region[self.side]] = False
        return known


@dataclass(frozen=True)
class Strokes:
    """Random brush strokes (random walks of a round brush), different per image, fixed by (seed, index)."""

    strokes: int = 4
    length: int = 12
    width: float = 0.1  # brush diameter as a fraction of the image side

    def __post_init__(self):
        if self.strokes < 1 or self.length < 1 or not 0 < self.width < 1:
            raise ConfigError(f"mask strokes={self.strokes}, length={self.length}, width={self.width} are invalid; "
                              f"allowed: strokes >= 1, length >= 1, 0 < width < 1")

    def __call__(self, n: int, size: int, seed: int = 0) -> torch.Tensor:
        yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        radius = max(0.75, self.width * size / 2)
        known = torch.ones(n, 1, size, size, dtype=torch.bool)
        for i in range(n):
            g = torch.Generator().manual_seed(seed * 1000003 + i)
            for _ in range(self.strokes):
                p = torch.rand(2, generator=g) * (size - 1)
                angle = torch.rand((), generator=g) * 2 * torch.pi
                for _ in range(self.length):
                    known[i, 0] &= (yy - p[0]) ** 2 + (xx - p[1]) ** 2 > radius**2
                    angle = angle + torch.randn((), generator=g) * 0.6
                    p = (p + radius * torch.stack([angle.sin(), angle.cos()])).clamp(0, size - 1)
        return known


@dataclass(frozen=True)
class FromFile:
    """A grayscale image file; white (>= 50%) marks the pixels to fill, black the known ones (as LaMa's masks).
    Resized to the model's size with nearest neighbour only if `resize` is true."""

    path: str = "???"
    resize: bool = False

    def __call__(self, n: int, size: int, seed: int = 0) -> torch.Tensor:
        from torchvision.io import ImageReadMode, read_image

        path = Path(self.path).expanduser()
        if not path.is_file():
            raise ConfigError(f"mask.path={self.path} does not exist; give a grayscale PNG (white = fill)")
        try:
            m = read_image(str(path), ImageReadMode.GRAY).float() / 255
        except RuntimeError as e:
            raise ConfigError(f"mask.path={self.path} is not a readable image ({str(e).splitlines()[0]})") from None
        if m.shape[-2:] != (size, size):
            if not self.resize:
                raise ConfigError(f"mask.path={self.path} is {m.shape[-1]}x{m.shape[-2]} but the model makes "
                                  f"{size}x{size} images; allowed: a {size}x{size} mask, or mask.resize=true")
            m = F.interpolate(m[None], size=(size, size), mode="nearest")[0]
        return (m < 0.5)[None].expand(n, 1, size, size).clone()
