"""Degradations, their simple baselines, and image-quality helpers; images [N x C x H x W] in [-1, 1]."""

import math

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Area average over factor x factor blocks: [N x C x H x W] -> [N x C x H/f x W/f]."""
    return F.avg_pool2d(x, factor) if factor > 1 else x


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour enlargement, the right inverse of `downsample`: downsample(upsample(x)) = x."""
    return x.repeat_interleave(factor, -2).repeat_interleave(factor, -1) if factor > 1 else x


def bicubic(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The classical super-resolution baseline."""
    return F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False).clamp(-1, 1)


def blur(x: torch.Tensor, std: float) -> torch.Tensor:
    """Gaussian blur with standard deviation `std` pixels (kernel 2 * ceil(3 std) + 1, at most what reflection at
    the border allows); std 0 = identity."""
    if std <= 0:
        return x
    size = 2 * min(math.ceil(3 * std), min(x.shape[-2:]) - 1) + 1
    return TF.gaussian_blur(x, [size, size], [std, std])


def mean_fill(x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Unknown pixels set to the mean of each image's known pixels (known: bool [N x 1 x H x W])."""
    known = known.expand_as(x).float()
    mean = (x * known).sum((1, 2, 3), keepdim=True) / known.sum((1, 2, 3), keepdim=True).clamp(min=1)
    return known * x + (1 - known) * mean


def blur_fill(x: torch.Tensor, known: torch.Tensor, iterations: int = 300, std: float = 1.0) -> torch.Tensor:
    """Known pixels diffused into the hole: blur, put the known pixels back, repeat (a discrete harmonic fill)."""
    out = mean_fill(x, known)
    k = known.expand_as(x)
    for _ in range(iterations):
        out = torch.where(k, x, blur(out, std))
    return out


def estimate_noise_std(y: torch.Tensor) -> torch.Tensor:
    """Per-image std of additive white Gaussian noise [N], from the finest diagonal Haar coefficients' median
    absolute value / 0.6745 (Donoho & Johnstone 1994): smooth image content barely reaches that band."""
    h, w = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
    y = y[..., :h, :w]
    d = (y[..., 0::2, 0::2] - y[..., 0::2, 1::2] - y[..., 1::2, 0::2] + y[..., 1::2, 1::2]) / 2
    return d.abs().flatten(1).median(1).values / 0.6745


def psnr(x: torch.Tensor, ref: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio [N] in dB on the [-1, 1] scale (peak-to-peak 2), optionally over a mask."""
    err = (x.clamp(-1, 1) - ref) ** 2
    if where is None:
        mse = err.flatten(1).mean(1)
    else:
        where = where.expand_as(err).float()
        mse = (err * where).flatten(1).sum(1) / where.flatten(1).sum(1).clamp(min=1)
    return 10 * torch.log10(4 / mse.clamp(min=1e-12))
