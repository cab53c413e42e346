import math

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from difflab.diffusion.schedules import CosineSchedule, LinearSchedule
from difflab.errors import ConfigError


def test_linear_matches_ho_et_al():
    abar = LinearSchedule().alphas_cumprod
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    expected = 1.0
    for i in (0, 1, 500, 999):
        expected = math.prod(1 - b for b in betas[: i + 1])
        assert abar[i].item() == pytest.approx(expected, rel=1e-12)


def test_cosine_matches_nichol_dhariwal():
    T, s = 1000, 0.008
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    abar = CosineSchedule().alphas_cumprod
    for t in (0, 10, 500, 900):
        # Before the 0.999 clip bites, abar_t = f(t+1)/f(0) in the 0-indexed convention.
        assert abar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-10)
    betas = 1 - abar / torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    assert betas.max().item() == pytest.approx(0.999, abs=1e-12)


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("T", [1, 10, 1000])
def test_configs_instantiate_float64_decreasing_in_unit_interval(name, T):
    cfg = OmegaConf.load(f"conf/schedule/{name}.yaml")
    cfg.timesteps = T
    abar = hydra.utils.instantiate(cfg).alphas_cumprod
    assert abar.dtype == torch.float64 and abar.shape == (T,)
    assert (abar > 0).all() and (abar <= 1).all()
    assert (abar[1:] < abar[:-1]).all()


@pytest.mark.parametrize("cls", [LinearSchedule, CosineSchedule])
@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_bad_timesteps(cls, bad):
    with pytest.raises(ConfigError, match="schedule.timesteps"):
        cls(timesteps=bad)


def test_alpha_sigma_at_and_karras_sigma_agree_with_the_tensor_form():
    """alpha_t^2 + sigma_t^2 = 1, Karras' sigma = sigma_t / alpha_t, and timestep_for_noise inverts it."""
    from difflab.diffusion.forward import timestep_for_noise
    from difflab.diffusion.schedules import alpha_sigma, alpha_sigma_at, karras_sigma

    abar = CosineSchedule(timesteps=100).alphas_cumprod
    for t in (0, 37, 99):
        a, s = alpha_sigma_at(abar, t)
        ta, ts = alpha_sigma(abar, torch.tensor([t]), abar.new_zeros(1, 1))
        assert (a, s) == (ta.item(), ts.item()) and abs(a * a + s * s - 1) < 1e-12
        assert float(karras_sigma(abar[t])) == pytest.approx(s / a, rel=1e-12)
        assert timestep_for_noise(abar, float(karras_sigma(abar[t]))) == t
