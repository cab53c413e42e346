"""Degradation operators, baselines and image metrics."""

import pytest
import torch

from difflab.apps.operators import (bicubic, blur_fill, downsample, estimate_noise_std, mean_fill, psnr,
                                    upsample)


@pytest.mark.parametrize("factor", [2, 4])
def test_downsample_undoes_upsample(factor):
    low = torch.randn(3, 2, 5, 5)
    assert torch.allclose(downsample(upsample(low, factor), factor), low, atol=1e-6)
    assert upsample(low, factor).shape == (3, 2, 5 * factor, 5 * factor)
    assert bicubic(low.clamp(-1, 1), factor).shape == (3, 2, 5 * factor, 5 * factor)


def test_downsample_is_the_block_mean():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert downsample(x, 2).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]


def test_psnr_against_its_definition():
    ref = torch.zeros(2, 1, 8, 8)
    x = ref + torch.tensor([0.1, 0.2]).view(2, 1, 1, 1)
    expected = 10 * torch.log10(4 / torch.tensor([0.01, 0.04]))
    assert torch.allclose(psnr(x, ref), expected, atol=1e-4)
    where = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    where[..., :2, :2] = True
    x[..., :2, :2] += 0.1  # errors only inside the region: PSNR over it sees them
    assert torch.allclose(psnr(x, ref, where), 10 * torch.log10(4 / torch.tensor([0.04, 0.09])), atol=1e-4)


@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.2, 0.4])
def test_noise_std_estimate_on_flat_and_smooth_images(sigma):
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    smooth = (0.5 * torch.sin(2 * xx) * torch.cos(yy)).expand(8, 1, 64, 64)
    y = smooth + sigma * torch.randn(8, 1, 64, 64, generator=g)
    assert estimate_noise_std(y).mean().item() == pytest.approx(sigma, rel=0.08)


def test_fills_keep_known_pixels():
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    known = torch.rand(2, 1, 8, 8) > 0.4
    for fill in (mean_fill(x, known), blur_fill(x, known, iterations=20)):
        assert torch.equal(fill[known], x[known])
    mean = x[0][known[0]].mean()
    assert torch.allclose(mean_fill(x, known)[0][~known[0]], mean.expand((~known[0]).sum()))
