"""Continuous-time processes (rectified flow, EDM) beside the discrete schedules, and the objectives on each."""

import math

import pytest
import torch

from difflab.diffusion.objectives import V, EDMPrecond, Epsilon, Flow, Score, X0
from difflab.diffusion.processes import EDM, RectifiedFlow, karras_grid, vp_alphas_cumprod
from difflab.diffusion.schedules import CosineSchedule, LinearSchedule
from difflab.errors import ConfigError

PROCESSES = [LinearSchedule(), CosineSchedule(timesteps=100), RectifiedFlow(), EDM()]
OBJECTIVES = [Epsilon(), V(), Score(), X0(), Flow(), EDMPrecond()]


def times(process, n=64, seed=0):
    """Training times of `process`, away from an alpha = 0 end."""
    t = process.sample_t(n, torch.Generator().manual_seed(seed), "cpu")
    return t.clamp(max=0.999) if isinstance(process, RectifiedFlow) else t


def defined(objective, process) -> bool:
    try:
        objective.check(process)
        return True
    except ConfigError:
        return False


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
def test_alpha_sigma_of_each_process(process):
    t = times(process)
    alpha, sigma = process.alpha_sigma(t)
    assert alpha.dtype == sigma.dtype == torch.float64 and alpha.shape == t.shape
    if process.variance_preserving:
        torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(alpha))
    elif isinstance(process, RectifiedFlow):
        torch.testing.assert_close(alpha, 1 - t.double())
        torch.testing.assert_close(sigma, t.double())
    else:
        torch.testing.assert_close(alpha, torch.ones_like(alpha))
        torch.testing.assert_close(sigma, t.double())
    abar = vp_alphas_cumprod(alpha, sigma)
    torch.testing.assert_close(abar / (1 - abar), (alpha / sigma) ** 2)  # the same signal-to-noise ratio


def test_rectified_flow_training_times():
    n, g = 200_000, torch.Generator().manual_seed(0)
    t = RectifiedFlow(t_sampling="logit_normal", mean=0.5, std=0.8).sample_t(n, g, "cpu")
    logit = (t / (1 - t)).log()
    assert abs(logit.mean() - 0.5) < 0.01 and abs(logit.std() - 0.8) < 0.01
    u = RectifiedFlow(t_sampling="uniform").sample_t(n, g, "cpu")
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002


def test_edm_training_sigmas_are_log_normal():
    sigma = EDM(P_mean=-1.2, P_std=1.2).sample_t(200_000, torch.Generator().manual_seed(0), "cpu")
    assert abs(sigma.log().mean() + 1.2) < 0.01 and abs(sigma.log().std() - 1.2) < 0.01


def test_edm_input_and_noise_scalings():
    sigma = torch.tensor([0.002, 0.5, 80.0], dtype=torch.float64)
    process = EDM(sigma_data=0.5)
    torch.testing.assert_close(process.c_in(sigma), 1 / (sigma**2 + 0.25).sqrt())
    torch.testing.assert_close(process.c_noise(sigma), 1000 * sigma.log() / 4)


def test_karras_grid():
    torch.testing.assert_close(karras_grid(80.0, 0.002, 5, rho=1.0),
                               torch.linspace(80.0, 0.002, 5, dtype=torch.float64))
    grid = karras_grid(80.0, 0.002, 18)
    assert grid[0] == pytest.approx(80.0) and grid[-1] == pytest.approx(0.002) and (grid.diff() < 0).all()
    # eq. 5 at i = 1 with rho = 7
    rho, n = 7.0, 18
    expected = (80 ** (1 / rho) + (0.002 ** (1 / rho) - 80 ** (1 / rho)) / (n - 1)) ** rho
    assert grid[1].item() == pytest.approx(expected)


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
@pytest.mark.parametrize("spacing", ["uniform", "karras", "logsnr"])
def test_grids_run_from_the_noisiest_level_down(process, spacing):
    if process.timesteps is not None and spacing != "uniform":
        pytest.skip("discrete schedules space their levels in the samplers")
    grid = process.grid(10, spacing)
    assert grid.shape == (10,)
    abar = vp_alphas_cumprod(*process.alpha_sigma(grid))
    assert (abar.diff() > 0).all(), "each step less noisy than the one before"
    assert abar[0] < 1e-3, "sampling starts from (almost) pure noise"


def test_rectified_flow_uniform_grid_is_eulers():
    torch.testing.assert_close(RectifiedFlow().grid(4), torch.tensor([1 - 1e-4, 0.75, 0.5, 0.25], dtype=torch.float64))


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: o.name)
def test_objectives_read_back_x0_and_eps(process, objective):
    """target(x0, eps) is what the network should output, and to_x0_eps reads that output back exactly."""
    if not defined(objective, process):
        pytest.skip("refused pair (tested below)")
    g = torch.Generator().manual_seed(1)
    t = times(process, 16)
    alpha, sigma = (a.reshape(-1, 1, 1, 1) for a in process.alpha_sigma(t))
    x0, eps = torch.randn(16, 1, 4, 4, generator=g, dtype=torch.float64), \
        torch.randn(16, 1, 4, 4, generator=g, dtype=torch.float64)
    x_t = alpha * x0 + sigma * eps
    out = objective.target(x0, eps, alpha, sigma)
    torch.testing.assert_close(objective.from_x0_eps(x0, eps, x_t, alpha, sigma), out)
    x0_hat, eps_hat = objective.to_x0_eps(out, x_t, alpha, sigma)
    torch.testing.assert_close(x0_hat, x0)
    torch.testing.assert_close(eps_hat, eps)
    # an error d in the output moves x0_hat by d / sqrt(x0_error_scale) (the Min-SNR weighting relies on it)
    d = 1e-3 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    moved = objective.to_x0_eps(out + d, x_t, alpha, sigma)[0] - x0
    scale = torch.as_tensor(objective.x0_error_scale(alpha, sigma)).expand_as(d)
    torch.testing.assert_close(moved**2 * scale, d**2)


def test_edm_preconditioning_is_karras_table_1_on_the_ve_process():
    sigma = torch.tensor([0.01, 0.5, 10.0], dtype=torch.float64).reshape(-1, 1)
    x_t, out = torch.full((3, 1), 2.0, dtype=torch.float64), torch.full((3, 1), -1.0, dtype=torch.float64)
    x0, _ = EDMPrecond(sigma_data=0.5).to_x0_eps(out, x_t, torch.ones_like(sigma), sigma)
    c_skip, c_out = 0.25 / (sigma**2 + 0.25), sigma * 0.5 / (sigma**2 + 0.25).sqrt()
    torch.testing.assert_close(x0, c_skip * x_t + c_out * out)


def test_flow_on_rectified_flow_is_the_ode_drift():
    """d x_t / dt of x_t = (1 - t) x0 + t eps is eps - x0: the flow target."""
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(8, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)
    t, h = 0.3, 1e-6
    path = lambda s: (1 - s) * x0 + s * eps  # noqa: E731
    torch.testing.assert_close((path(t + h) - path(t - h)) / (2 * h), Flow().target(x0, eps, None, None))


@pytest.mark.parametrize("objective, process, words", [
    (V(), RectifiedFlow(), "objective=v is defined on variance-preserving processes"),
    (V(), EDM(), "not on schedule=edm"),
    (Epsilon(), RectifiedFlow(), "objective=epsilon cannot recover x0 where alpha = 0"),
    (Score(), RectifiedFlow(), "schedule=rectified_flow reaches at its noisiest level"),
])
def test_refused_pairs_say_why_in_one_line(objective, process, words):
    with pytest.raises(ConfigError, match=words) as e:
        objective.check(process)
    assert "\n" not in str(e.value) and "allowed" in str(e.value)


@pytest.mark.parametrize("make, words", [
    (lambda: EDM(sigma_min=1.0, sigma_max=0.5), "schedule.sigma_min=1.0, schedule.sigma_max=0.5 are invalid"),
    (lambda: EDM(sigma_min=0.0), "schedule.sigma_min=0.0 is invalid"),
    (lambda: EDM(P_std=-1.0), "schedule.P_std=-1.0 is invalid"),
    (lambda: EDM(sigma_data=0), "schedule.sigma_data=0 is invalid"),
    (lambda: RectifiedFlow(t_sampling="beta"), "schedule.t_sampling='beta' is invalid; allowed: uniform, logit"),
    (lambda: RectifiedFlow(std=0.0), "schedule.std=0.0 is invalid"),
    (lambda: RectifiedFlow(mean=math.inf), "schedule.mean=inf is invalid"),
    (lambda: EDMPrecond(sigma_data=-0.5), "objective.sigma_data=-0.5 is invalid"),
    (lambda: EDM().grid(4, "cosine"), "sampler.spacing='cosine' is invalid; allowed: uniform, karras, logsnr"),
])
def test_bad_process_parameters(make, words):
    with pytest.raises(ConfigError, match=words):
        make()
