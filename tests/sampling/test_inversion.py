"""Inversion against closed forms: with data N(m, s^2) per pixel the exact denoiser is affine, so every DDIM step,
plain inversion step and round trip is an affine map of each pixel, computed here independently in float64."""

import math

import pytest
import torch

from difflab.diffusion import CosineSchedule, Epsilon, LinearSchedule
from difflab.diffusion.gaussian import GaussianDataNet
from difflab.errors import ConfigError
from difflab.module import DiffusionModule
from difflab.sampling import DDIM, ddim_decode, ddim_invert, exact_invert

M, S = 0.1, 0.25
SHAPE = (1, 16, 16)
ROUND_TRIP_TOL = 0.01  # relative error of the deviation from the mean, as asked of an exact inversion


def exact_denoiser(schedule=None):
    schedule = schedule or LinearSchedule()
    net = GaussianDataNet(schedule.alphas_cumprod, Epsilon(), M, S)
    return DiffusionModule(net, schedule, Epsilon(), SHAPE, sampler=DDIM(clip_x0=False)).denoiser()


def gaussian_images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return M + S * torch.randn(n, *SHAPE, generator=g, dtype=torch.float64)


def grid(steps: int, start: int) -> list[int]:
    """The DDIM grid from start down to 0 (as in test_closed_form; at most start + 1 points), least noisy first."""
    steps = min(steps, start + 1)
    return [round(start * (1 - k / (steps - 1))) for k in range(steps)][::-1]


def predict(abar, x, t):
    """The exact (x0_hat, eps_hat) for Gaussian data at integer t; works on floats and tensors alike."""
    a, sig = math.sqrt(abar[t]), math.sqrt(1 - abar[t])
    x0 = M + a * S**2 / (a**2 * S**2 + sig**2) * (x - a * M)
    return x0, (x - a * x0) / sig


def reference_plain_round_trip(abar, steps: int, x, start: int | None = None):
    """Plain DDIM inversion (eps at the current point; the clean image's read at the first level), then DDIM."""
    ts = grid(steps, len(abar) - 1 if start is None else start)
    a_x, sig_x, t_x = 1.0, 0.0, ts[0]
    for t in ts:
        eps = predict(abar, x, t_x)[1]
        x0 = (x - sig_x * eps) / a_x
        a_x, sig_x, t_x = math.sqrt(abar[t]), math.sqrt(1 - abar[t]), t
        x = a_x * x0 + sig_x * eps
    return reference_decode(abar, ts, x)


def reference_decode(abar, ts, x):
    """Deterministic DDIM from x at ts[-1] down the grid ts (least noisy first); returns x0_hat at ts[0]."""
    for s, t in zip(ts[-2::-1], ts[::-1]):
        x0, eps = predict(abar, x, t)
        x = math.sqrt(abar[s]) * x0 + math.sqrt(1 - abar[s]) * eps
    return predict(abar, x, ts[0])[0]


def deviation_error(x, ref) -> float:
    """|x - ref| / |ref - m|: an error measured against what the model can change, the deviation from the mean."""
    return ((x - ref).norm() / (ref - M).norm()).item()


def test_plain_inversion_shrinks_the_deviation_from_the_mean():
    schedule = LinearSchedule()
    abar = schedule.alphas_cumprod.tolist()
    denoiser, x = exact_denoiser(schedule), gaussian_images(8)
    rt = ddim_decode(denoiser, ddim_invert(denoiser, x, 50), 50)
    expected = reference_plain_round_trip(abar, 50, x)
    torch.testing.assert_close(rt, expected, rtol=1e-9, atol=1e-9)
    ratio = ((rt - M).norm() / (x - M).norm()).item()
    assert 0.7 < ratio < 0.9  # ~0.81: plain inversion is clearly not exact
    # the round trip is affine per pixel: its slope is the ratio, whatever the image
    slope = reference_plain_round_trip(abar, 50, 1.0) - reference_plain_round_trip(abar, 50, 0.0)
    assert ratio == pytest.approx(slope, abs=1e-3)


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
@pytest.mark.parametrize("steps", [10, 50, 200])
def test_exact_inversion_round_trip(schedule, steps):
    denoiser, x, info = exact_denoiser(schedule), gaussian_images(4), {}
    rt = ddim_decode(denoiser, exact_invert(denoiser, x, steps, info=info), steps)
    assert deviation_error(rt, x) < ROUND_TRIP_TOL
    assert info["residual"] <= 1e-5 and len(info["residuals"]) == steps
    assert steps < info["nfe"] <= 1 + 50 * steps
    plain = ddim_decode(denoiser, ddim_invert(denoiser, x, steps), steps)
    assert deviation_error(plain, x) > 10 * deviation_error(rt, x)


def test_codes_look_standard_normal():
    """Exact inversion inverts the decoder's per-pixel affine map, so the codes' std is that of the images over its
    slope: above 1 by the variance DDIM loses, an excess that falls like 1/steps."""
    schedule = LinearSchedule()
    abar = schedule.alphas_cumprod.tolist()
    x = gaussian_images(64, seed=1)
    excess = {}
    for steps in (50, 200):
        ts = grid(steps, len(abar) - 1)
        slope = reference_decode(abar, ts, 1.0) - reference_decode(abar, ts, 0.0)
        codes = exact_invert(exact_denoiser(schedule), x, steps)
        assert abs(codes.mean().item()) < 4 / math.sqrt(codes.numel())  # a_T m ~ 6e-4: zero within sampling error
        assert codes.std().item() == pytest.approx(x.std().item() / slope, rel=1e-3)
        excess[steps] = codes.std().item() * S / x.std().item() - 1  # the ODE's codes would have std 1 (abar_T ~ 0)
    assert 0 < excess[200] < excess[50] / 3 and excess[200] < 0.03


@pytest.mark.parametrize("start, steps", [(500, 20), (3, 50)])
def test_inversion_to_an_intermediate_timestep(start, steps):
    """Codes at `start` invert the decoder from `start`. The probability-flow ODE would scale each pixel's deviation
    by sqrt(abar S^2 + 1 - abar) / S (x_start's std over x0's); DDIM shrinks more, so its codes spread more."""
    schedule = LinearSchedule()
    abar = schedule.alphas_cumprod.tolist()
    denoiser, x = exact_denoiser(schedule), gaussian_images(16, seed=2)
    codes = exact_invert(denoiser, x, steps, start=start)
    assert deviation_error(ddim_decode(denoiser, codes, steps, start=start), x) < ROUND_TRIP_TOL
    ts = grid(steps, start)
    slope = reference_decode(abar, ts, 1.0) - reference_decode(abar, ts, 0.0)
    assert codes.std().item() == pytest.approx(x.std().item() / slope, rel=1e-3)
    assert codes.std().item() > x.std().item() * math.sqrt(abar[start] * S**2 + 1 - abar[start]) / S
    plain = ddim_decode(denoiser, ddim_invert(denoiser, x, steps, start=start), steps, start=start)
    expected = reference_plain_round_trip(abar, steps, x, start)
    torch.testing.assert_close(plain, expected, rtol=1e-9, atol=1e-9)


def test_unconverged_solver_warns_and_reports_its_residual():
    denoiser, x, info = exact_denoiser(), gaussian_images(2), {}
    with pytest.warns(RuntimeWarning, match="residual"):
        exact_invert(denoiser, x, 10, iterations=1, info=info)
    assert info["residual"] > 1e-5 and info["nfe"] == 11


INVERSIONS = [ddim_invert, exact_invert, ddim_decode]


@pytest.mark.parametrize("fn", INVERSIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("kwargs, named", [
    ({"steps": 0}, "steps=0"), ({"steps": 1001}, "steps=1001"), ({"steps": 2.5}, "steps=2.5"),
    ({"start": 1000}, "start=1000"), ({"start": -1}, "start=-1"), ({"x": torch.zeros(1, 16, 16)}, "shape (1, 16, 16)"),
])
def test_bad_arguments_raise_one_line_config_errors(fn, kwargs, named):
    args = {"steps": 10, "x": gaussian_images(1), **kwargs}
    with pytest.raises(ConfigError, match="allowed") as error:
        fn(exact_denoiser(), args.pop("x"), args.pop("steps"), **args)
    assert named in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("kwargs", [{"iterations": 0}, {"tol": 0.0}])
def test_bad_solver_settings_raise(kwargs):
    with pytest.raises(ConfigError, match="allowed"):
        exact_invert(exact_denoiser(), gaussian_images(1), 10, **kwargs)


def test_ddim_step_to_a_noisier_level_is_the_deterministic_renoising():
    from difflab.sampling.steps import ddim_step

    x0, eps = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    out = ddim_step(x0, eps, 0.9, 0.3, eta=0.0, noise=None)  # t -> noisier s, as inversion steps
    torch.testing.assert_close(out, 0.3**0.5 * x0 + 0.7**0.5 * eps)
    with pytest.raises(ValueError, match="noisier level .* takes eta = 0 only"):
        ddim_step(x0, eps, 0.9, 0.3, eta=1.0, noise=lambda shape, dtype: torch.zeros(shape))
