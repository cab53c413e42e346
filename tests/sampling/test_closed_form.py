"""Samplers against closed forms: with data N(m, s^2) per pixel the best network output is known exactly."""

import pytest
import torch

from difflab.diffusion import CosineSchedule, Epsilon, LinearSchedule, Score, V
from difflab.diffusion.gaussian import GaussianDataNet
from difflab.module import DiffusionModule
from difflab.sampling import DDIM, DDPM, respaced_timesteps

M, S = 0.5, 0.25
SHAPE = (1, 32, 32)
OBJECTIVES = [Epsilon(), V(), Score()]


def exact_module(objective, schedule=None, sampler=None):
    schedule = schedule or LinearSchedule()
    net = GaussianDataNet(schedule.alphas_cumprod, objective, M, S)
    # Gaussian data are unbounded: no clamping of x0 to the image range here.
    return DiffusionModule(net, schedule, objective, SHAPE, sampler=sampler or DDIM(clip_x0=False))


def ddim_gaussian_moments(abar: torch.Tensor, steps: int, tau: float = 1.0) -> tuple[float, float]:
    """Mean and std of deterministic DDIM's output for Gaussian data, by propagating the affine map in float64.

    x0_hat(x) = m + a s^2/(a^2 s^2 + sig^2)(x - a m); eps_hat = (x - a x0_hat)/sig;
    x_next = sqrt(abar_next) x0_hat + sqrt(1 - abar_next) eps_hat.  Written here independently of the package.
    """
    ts = [round((len(abar) - 1) * (1 - k / (steps - 1))) if steps > 1 else len(abar) - 1 for k in range(steps)]
    mean, std = 0.0, tau
    for i, t in enumerate(ts):
        a, sig = abar[t].sqrt().item(), (1 - abar[t]).sqrt().item()
        k = a * S**2 / (a**2 * S**2 + sig**2)
        x0_mean, x0_std = M + k * (mean - a * M), k * std
        if i == len(ts) - 1:
            return x0_mean, x0_std
        an, sn = abar[ts[i + 1]].sqrt().item(), (1 - abar[ts[i + 1]]).sqrt().item()
        # x_next = an x0 + sn (x - a x0)/sig = (an - sn a / sig) x0 + (sn / sig) x
        c0, c1 = an - sn * a / sig, sn / sig
        mean = c0 * x0_mean + c1 * mean
        std = abs(c0 * k + c1) * std
    raise AssertionError("unreachable")


def moments(x: torch.Tensor) -> tuple[float, float]:
    return x.mean().item(), x.std().item()


@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: o.name)
@pytest.mark.parametrize("sampler", [DDPM(clip_x0=False), DDIM(clip_x0=False, steps=1000)], ids=["ddpm", "ddim1000"])
def test_1000_steps_recover_data_moments(objective, sampler):
    x = exact_module(objective).sample(64, sampler=sampler, seed=0)
    mean, std = moments(x)
    assert mean == pytest.approx(M, rel=0.03)
    assert std == pytest.approx(S, rel=0.03)


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: o.name)
def test_ddim_50_matches_exact_recursion(objective, schedule):
    x = exact_module(objective, schedule).sample(64, sampler=DDIM(clip_x0=False, steps=50), seed=1)
    mean, std = ddim_gaussian_moments(schedule.alphas_cumprod, 50)
    assert moments(x)[0] == pytest.approx(mean, rel=0.01)
    assert moments(x)[1] == pytest.approx(std, rel=0.01)


def test_reference_timesteps_match_package_grid():
    ts = respaced_timesteps(1000, 50).tolist()
    assert ts[0] == 999 and ts[-1] == 0 and len(set(ts)) == 50
    assert ts == [round(999 * (1 - k / 49)) for k in range(50)]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: o.name)
@pytest.mark.parametrize("tau", [0.5, 0.8, 1.3])
def test_temperature_scales_ddim_std(objective, tau):
    module = exact_module(objective, sampler=DDIM(clip_x0=False, steps=50))
    std1 = moments(module.sample(64, seed=2))[1]
    std_tau = moments(module.sample(64, seed=2, temperature=tau))[1]
    assert std_tau == pytest.approx(tau * std1, rel=0.02)
    assert ddim_gaussian_moments(LinearSchedule().alphas_cumprod, 50, tau)[1] == pytest.approx(
        tau * ddim_gaussian_moments(LinearSchedule().alphas_cumprod, 50)[1]
    )


def test_ddpm_temperature_lowers_diversity():
    module = exact_module(Epsilon(), sampler=DDPM(clip_x0=False, steps=100))
    assert moments(module.sample(32, seed=3, temperature=0.5))[1] < 0.8 * moments(module.sample(32, seed=3))[1]


def test_seeded_sample_depends_only_on_seed_and_index():
    module = exact_module(Epsilon(), sampler=DDPM(clip_x0=False, steps=20))
    whole = module.sample(10, seed=7, batch_size=10)
    torch.testing.assert_close(module.sample(10, seed=7, batch_size=3), whole)
    torch.testing.assert_close(module.sample(4, seed=7, start_index=6), whole[6:])
    assert not torch.allclose(module.sample(10, seed=8), whole)


def test_clipping_keeps_predictions_in_the_data_range():
    module = exact_module(Epsilon())
    clipped = module.sample(16, sampler=DDIM(steps=10), seed=4)
    assert clipped.min() >= -1 and clipped.max() <= 1
    unclipped = module.sample(16, sampler=DDIM(steps=10, clip_x0=False), seed=4)
    assert unclipped.max() > 1  # N(0.5, 0.25^2) data leave [-1, 1]: the option does change the result
