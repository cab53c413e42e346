"""Applications against closed forms, with the exact denoiser of Gaussian data N(M, S^2) per pixel.

Pixels are independent under that model, so what an application generates where nothing is observed must follow
the data distribution, and what it restores from an observation must follow the Gaussian posterior."""

import pytest
import torch

from difflab.apps.denoise import as_noisy_state, sdedit, tweedie
from difflab.apps.inpaint import repaint, repaint_path
from difflab.apps.operators import downsample
from difflab.apps.superres import ilvr_projection
from difflab.diffusion.forward import timestep_for_noise
from difflab.sampling import DDIM, DDPM, make_noise
from tests.apps.conftest import M, S, gaussian_module


@pytest.mark.parametrize("steps, jump, resample", [(10, 2, 3), (50, 5, 5), (7, 3, 1)])
def test_repaint_path(steps, jump, resample):
    path = repaint_path(steps, jump, resample)
    assert path[0] == 0 and path[-1] == steps - 1
    assert all(abs(b - a) == 1 for a, b in zip(path, path[1:]))
    down = sum(b > a for a, b in zip(path, path[1:]))
    assert down == steps - 1 + len(range(jump, steps - 1, jump)) * jump * (resample - 1)


@pytest.mark.slow
def test_repaint_keeps_known_pixels_and_fills_from_the_data_distribution(gaussian):
    g = torch.Generator().manual_seed(0)
    # 256 images: the hole's std has a standard error of 0.4% beside the sampler's own bias of about -1.6%
    image = M + S * torch.randn(256, 1, 16, 16, generator=g)
    known = torch.zeros(256, 1, 16, 16, dtype=torch.bool)
    known[..., :, :8] = True
    out = repaint(gaussian.denoiser(), image, known, make_noise(256, 0), steps=1000, jump_length=10, resample=2,
                  clip_x0=False)
    assert torch.equal(out[known.expand_as(out)], image[known.expand_as(image)])
    hole = out[~known.expand_as(out)]
    assert hole.mean().item() == pytest.approx(M, abs=0.01)
    assert hole.std().item() == pytest.approx(S, rel=0.03)


def test_repaint_with_few_steps_fills_like_ddpm_at_those_steps(gaussian):
    # Respaced DDPM is under-dispersed at 100 steps (std ~0.224 for S = 0.25); resampling must not change that.
    image = M + S * torch.randn(64, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    known = torch.zeros(64, 1, 16, 16, dtype=torch.bool)
    known[..., :, :8] = True
    out = repaint(gaussian.denoiser(), image, known, make_noise(64, 0), steps=100, jump_length=5, resample=3,
                  clip_x0=False)
    plain = DDPM(steps=100, clip_x0=False)(gaussian.denoiser(), make_noise(64, 1), (1, 16, 16))
    assert out[~known.expand_as(out)].std().item() == pytest.approx(plain.std().item(), rel=0.03)


@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("sampler", [DDIM(steps=50, clip_x0=False), DDPM(steps=100, clip_x0=False)],
                         ids=["ddim", "ddpm"])
def test_ilvr_output_downsamples_to_the_input(gaussian, factor, sampler):
    g = torch.Generator().manual_seed(1)
    low = downsample(M + S * torch.randn(32, 1, 16, 16, generator=g), factor)
    noise = make_noise(32, 0)
    project = ilvr_projection(low, factor, gaussian.alphas_cumprod, noise)
    out = sampler(gaussian.denoiser(), noise, (1, 16, 16), project=project)
    assert (downsample(out, factor) - low).abs().max().item() < 1e-5


@pytest.mark.parametrize("factor", [2, 4])
def test_ilvr_detail_follows_the_conditional_distribution(gaussian, factor):
    # Independent pixels: block means and the detail within blocks are independent, so with exact 1000-step
    # DDPM the detail must spread like N(M, S^2) given its block mean: std S sqrt(1 - 1/f^2).
    low = downsample(M + S * torch.randn(32, 1, 16, 16, generator=torch.Generator().manual_seed(1)), factor)
    noise = make_noise(32, 0)
    out = DDPM(clip_x0=False)(gaussian.denoiser(), noise, (1, 16, 16),
                              project=ilvr_projection(low, factor, gaussian.alphas_cumprod, noise))
    detail = out - torch.repeat_interleave(torch.repeat_interleave(low, factor, -2), factor, -1)
    assert detail.mean().abs().item() < 0.01
    assert detail.std().item() == pytest.approx(S * (1 - 1 / factor**2) ** 0.5, rel=0.03)


@pytest.mark.parametrize("sigma", [0.1, 0.2, 0.4])
def test_tweedie_is_the_gaussian_posterior_mean(gaussian, sigma):
    g = torch.Generator().manual_seed(2)
    y = M + S * torch.randn(4, 1, 16, 16, generator=g) + sigma * torch.randn(4, 1, 16, 16, generator=g)
    estimate = tweedie(gaussian.denoiser(), y, torch.full((4,), sigma))
    abar = gaussian.alphas_cumprod
    t = timestep_for_noise(abar, sigma)
    sigma_t = ((1 - abar[t]) / abar[t]).sqrt().item()  # the grid's nearest noise level
    assert abs(sigma_t - sigma) / sigma < 0.02  # the linear schedule's 1000 levels are 1.3% apart at 0.1
    posterior = M + S**2 / (S**2 + sigma_t**2) * (y - M)
    assert torch.allclose(estimate, posterior, atol=1e-5)


def test_noisy_state_matches_the_timestep(gaussian):
    y = torch.zeros(3, 1, 4, 4)
    _, t = as_noisy_state(y, torch.tensor([0.0, 0.2, 1.0]), gaussian.alphas_cumprod)
    assert t[0] == 0 and t[0] < t[1] < t[2]


def test_sdedit_samples_the_posterior(gaussian):
    sigma, n = 0.3, 256
    y = torch.full((n, 1, 4, 4), 0.5)  # one observation, many restorations
    out = sdedit(gaussian.denoiser(), DDPM(steps=200, clip_x0=False), y, torch.full((n,), sigma), make_noise(n, 3))
    gain = S**2 / (S**2 + sigma**2)
    assert out.mean().item() == pytest.approx(M + gain * (0.5 - M), abs=0.01)
    assert out.std().item() == pytest.approx((gain * sigma**2) ** 0.5, rel=0.06)  # posterior std


@pytest.mark.parametrize("tau", [0.5, 1.5])
def test_temperature_scales_what_applications_invent(gaussian, tau):
    # Fill a fully unknown image with 100-step DDIM-style RePaint (eta = 0): the spread of what is generated
    # scales with the temperature like the sampler's own.
    image = torch.zeros(64, 1, 16, 16)
    known = torch.zeros(64, 1, 16, 16, dtype=torch.bool)
    base = repaint(gaussian.denoiser(), image, known, make_noise(64, 0), steps=100, eta=0.0, resample=1,
                   clip_x0=False)
    hot = repaint(gaussian.denoiser(), image, known, make_noise(64, 0), steps=100, eta=0.0, resample=1,
                  clip_x0=False, temperature=tau)
    assert (hot - M).std().item() == pytest.approx(tau * (base - M).std().item(), rel=0.02)
