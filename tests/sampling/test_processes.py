"""Every sampler on every continuous-time process, against the closed form for Gaussian data.

With data N(M, S^2) per pixel the exact denoiser is known on any process (diffusion/gaussian.py); a sampler's
output must then have mean M and std S, up to its discretisation error (and, for stochastic samplers, the Monte
Carlo error of 4096 pixels)."""

import pytest
import torch

from difflab.diffusion.denoiser import LEVELS, Denoiser, Levels, sampling_schedule
from difflab.diffusion.gaussian import GaussianProcessNet
from difflab.diffusion.objectives import EDMPrecond, Epsilon, Flow, X0
from difflab.diffusion.processes import EDM, RectifiedFlow
from difflab.diffusion.schedules import CosineSchedule
from difflab.sampling import DDIM, DDPM, DPMSolverPP, Heun
from difflab.sampling.noise import make_noise

M, S = 0.2, 0.3
SHAPE = (1, 64, 64)
PAIRS = [(RectifiedFlow(), Flow()), (RectifiedFlow(), X0()), (RectifiedFlow(), EDMPrecond()),
         (EDM(), EDMPrecond()), (EDM(), Epsilon()), (EDM(), Flow())]
PAIR_IDS = [f"{p.name}-{o.name}" for p, o in PAIRS]
# deterministic samplers by order of accuracy: error(2N) <= error(N) / 2^order, with some slack
ODE_SAMPLERS = [(lambda n: DDIM(steps=n, clip_x0=False), 1), (lambda n: DPMSolverPP(steps=n, clip_x0=False), 2),
                (lambda n: Heun(steps=n, spacing="karras", clip_x0=False), 2),
                (lambda n: Heun(steps=n, spacing="logsnr", clip_x0=False), 2)]
ODE_IDS = ["ddim", "dpmpp_2m", "heun_karras", "heun_logsnr"]


def denoiser_for(process, objective, sampler):
    net = GaussianProcessNet(process, objective, M, S)
    return Denoiser(net, sampling_schedule(process, sampler.steps, sampler.grid_spacing), objective)


def affine_map(process, objective, sampler) -> tuple[float, float]:
    """(slope, offset) of a deterministic sampler's map from the initial noise to x0, from x_T = 0 and 1 in float64:
    for Gaussian data the exact map is x0 = M + S x_T."""
    x = torch.tensor([0.0, 1.0], dtype=torch.float64).reshape(2, 1, 1, 1)
    out = sampler(denoiser_for(process, objective, sampler), None, (1, 1, 1), x=x).flatten()
    return float(out[1] - out[0]), float(out[0])


@pytest.mark.parametrize("process, objective", PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("make, order", ODE_SAMPLERS, ids=ODE_IDS)
def test_ode_samplers_converge_to_the_data_distribution_at_their_order(process, objective, make, order):
    errors = []
    for steps in (20, 40, 80):
        slope, offset = affine_map(process, objective, make(steps))
        # sampling starts at sigma/alpha = 80 (or t = 1 - 1e-4), not infinity: the mean is off by ~ S M / 80
        assert abs(offset - M) < 2e-3
        errors.append(abs(slope / S - 1))
    assert errors[-1] < 0.04
    assert errors[2] <= errors[1] / 2**order * 1.3 and errors[1] <= errors[0] / 2**order * 1.3


@pytest.mark.parametrize("make", [ODE_SAMPLERS[1][0], ODE_SAMPLERS[2][0]], ids=["dpmpp_2m", "heun_karras"])
def test_processes_with_the_same_snr_grid_sample_alike(make):
    """Rectified flow and EDM placed on the same sigma/alpha grid are one process up to scale: with the exact
    denoiser each sampler's map is the same on both."""
    sampler = make(12)
    rf = affine_map(RectifiedFlow(), Flow(), sampler)
    edm = affine_map(EDM(), EDMPrecond(), sampler)
    assert rf == pytest.approx(edm, abs=1e-9)


@pytest.mark.parametrize("process, objective", PAIRS[::3], ids=PAIR_IDS[::3])
@pytest.mark.parametrize("sampler, std_tol", [(DDPM(steps=200, clip_x0=False), 0.045),
                                              (DPMSolverPP(steps=50, eta=1.0, clip_x0=False), 0.03)],
                         ids=["ddpm_200", "dpmpp_2m_sde_50"])
def test_stochastic_samplers_reach_the_data_moments(process, objective, sampler, std_tol):
    noise = make_noise(4, 0)
    x = sampler(denoiser_for(process, objective, sampler), noise, SHAPE, x=noise(SHAPE, torch.float64))
    assert torch.isfinite(x).all()
    assert abs(x.mean().item() - M) < 0.005  # 16384 pixels: Monte Carlo std of the mean 0.0023
    assert abs(x.std().item() / S - 1) < std_tol


def test_ddim_on_rectified_flow_is_euler_on_its_ode():
    """For x_t = (1 - t) x0 + t eps, DDIM's step is x_s = x_t + (s - t) u with u = eps - x0 (the flow)."""
    process, objective = RectifiedFlow(), Flow()
    net = GaussianProcessNet(process, objective, M, S)
    x_vp = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = DDIM(steps=8, clip_x0=False)(Denoiser(net, Levels.of(process, 8), objective), None, SHAPE, x=x_vp)
    grid = process.grid(8).tolist() + [0.0]
    x = x_vp * ((1 - grid[0]) ** 2 + grid[0] ** 2) ** 0.5  # the sampler's state is variance-preserving
    for t, s in zip(grid[:-1], grid[1:]):
        x = x + (s - t) * net(x, process.c_noise(torch.full((4,), t, dtype=torch.float64)))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-10)


def test_temperature_and_per_sample_seeds_hold_on_a_continuous_process():
    process, objective = EDM(), EDMPrecond()
    sampler = DPMSolverPP(steps=10, clip_x0=False)
    denoiser = Denoiser(GaussianProcessNet(process, objective, M, S), Levels.of(process, 10, "logsnr"), objective)
    cold = sampler(denoiser, make_noise(1, 0), SHAPE)
    hot = sampler(denoiser, make_noise(1, 0), SHAPE, temperature=0.5)
    assert hot.std() < 0.6 * cold.std()
    # sample i depends only on (seed, i): the first of two is the one drawn alone
    pair = sampler(denoiser, make_noise(2, 0), SHAPE)
    torch.testing.assert_close(pair[:1], cold)


def test_discrete_schedules_keep_their_table():
    schedule = CosineSchedule()
    assert sampling_schedule(schedule, 50, "karras") is not None
    torch.testing.assert_close(sampling_schedule(schedule, 50), schedule.alphas_cumprod)


def test_a_sampler_of_every_level_reads_a_continuous_process_at_LEVELS_times():
    """steps=null (DDPM's default: every level) on a continuous process is LEVELS levels of its own grid."""
    assert len(sampling_schedule(EDM(), None).times) == LEVELS
    torch.testing.assert_close(sampling_schedule(EDM(), None).times.flip(0), EDM().grid(LEVELS))


def test_the_euler_config_is_ddim_on_the_same_grid():
    """sampler=euler (first-order DPM-Solver++) on rectified flow's own grid is DDIM's step, i.e. Euler's."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from tests.conftest import CONF

    euler = instantiate(OmegaConf.load(CONF / "sampler" / "euler.yaml"), steps=8, clip_x0=False, spacing="uniform")
    assert affine_map(RectifiedFlow(), Flow(), euler) == pytest.approx(
        affine_map(RectifiedFlow(), Flow(), DDIM(steps=8, clip_x0=False)), abs=1e-12)
