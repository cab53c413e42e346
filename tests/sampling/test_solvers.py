"""DPM-Solver++(2M) and Heun against closed forms: for data N(m, s^2) per pixel the exact denoiser is known, the
probability-flow ODE maps the noise to the data exactly, and each solver's map is affine and can be written out."""

import math

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from difflab.diffusion import CosineSchedule, Denoiser, Epsilon, LinearSchedule
from difflab.diffusion.gaussian import GaussianDataNet
from difflab.errors import ConfigError
from difflab.module import DiffusionModule
from difflab.sampling import DDIM, DPMSolverPP, Heun, make_noise, respaced_timesteps
from difflab.sampling.grids import SPACING_NAMES
from difflab.sampling.dpm_solver import dpmpp_step, exponential_weights
from difflab.sampling.steps import ddim_coefficients
from difflab.train import train
from tests.conftest import CONF, compose_train

M, S = 0.1, 0.25
SHAPE = (1, 32, 32)
SCHEDULES = [LinearSchedule(), CosineSchedule()]
SCHEDULE_IDS = ["linear", "cosine"]


def exact_denoiser(schedule, mean=M, std=S) -> Denoiser:
    abar = schedule.alphas_cumprod
    return Denoiser(GaussianDataNet(abar, Epsilon(), mean, std), abar, Epsilon())


def exact_module(schedule, sampler) -> DiffusionModule:
    net = GaussianDataNet(schedule.alphas_cumprod, Epsilon(), M, S)
    return DiffusionModule(net, schedule, Epsilon(), SHAPE, sampler=sampler)


def posterior_mean(x, alpha, sigma):
    return M + alpha * S**2 / (alpha**2 * S**2 + sigma**2) * (x - alpha * M)


def dpmpp_reference(abar: torch.Tensor, ts: list[int], x: torch.Tensor) -> torch.Tensor:
    """Lu et al. 2022, Algorithm 2, in float64 on the paper's own formulas (written apart from the package)."""
    alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
    lam = torch.log(alpha / sigma)
    x, x0_prev = x.double(), None
    for i, (t, s) in enumerate(zip(ts[:-1], ts[1:])):
        x0 = posterior_mean(x, alpha[t], sigma[t])
        h = lam[s] - lam[t]
        r = (lam[t] - lam[ts[i - 1]]) / h if i > 0 else None  # r_i = h_{i-1} / h_i
        d = x0 if i == 0 else (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_prev
        x, x0_prev = sigma[s] / sigma[t] * x - alpha[s] * torch.expm1(-h) * d, x0
    return posterior_mean(x, alpha[ts[-1]], sigma[ts[-1]])


def heun_reference(abar: torch.Tensor, ts: list[int], x: torch.Tensor) -> torch.Tensor:
    """Karras et al. 2022, Algorithm 1 (S_churn = 0) on y = x / alpha with sigma = sqrt((1 - abar) / abar)."""
    sigmas = [((1 - abar[t]) / abar[t]).sqrt().item() for t in ts] + [0.0]
    denoise = lambda y, sg: M + S**2 / (S**2 + sg**2) * (y - M)  # noqa: E731  E[x0 | y] for the Gaussian
    y = x.double() / abar[ts[0]].sqrt()
    for sg, sg_next in zip(sigmas[:-1], sigmas[1:]):
        d = (y - denoise(y, sg)) / sg
        y_next = y + (sg_next - sg) * d
        if sg_next > 0:
            y_next = y + (sg_next - sg) * (d + (y_next - denoise(y_next, sg_next)) / sg_next) / 2
        y = y_next
    return y


def exact_map(sampler, schedule) -> tuple[float, float]:
    """(slope, offset) of the sampler's affine map from x_T to x0, run in float64 on x_T = 0 and 1."""
    x = torch.tensor([0.0, 1.0], dtype=torch.float64).reshape(2, 1, 1, 1)
    out = sampler(exact_denoiser(schedule), None, (1, 1, 1), x=x, start=schedule.timesteps - 1).flatten()
    return float(out[1] - out[0]), float(out[0])


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
@pytest.mark.parametrize("nfe", [10, 20])
def test_dpmpp_reaches_data_moments_in_few_steps(schedule, nfe):
    sampler = DPMSolverPP(steps=nfe, clip_x0=False)
    assert sampler.nfe(schedule.timesteps) == nfe
    x = exact_module(schedule, sampler).sample(64, seed=0)
    noise = make_noise(64, 0)(SHAPE)
    ts = sampler.timesteps(schedule.timesteps, alphas_cumprod=schedule.alphas_cumprod).tolist()
    torch.testing.assert_close(x.double(), dpmpp_reference(schedule.alphas_cumprod, ts, noise), rtol=1e-4, atol=1e-5)
    slope, offset = exact_map(sampler, schedule)
    print(f"dpm++ {nfe} NFE: std / s - 1 = {slope / S - 1:+.4f} (exact map), {x.std().item() / S - 1:+.4f} (sample)")
    assert slope == pytest.approx(S, rel=0.03) and offset == pytest.approx(M, rel=0.01)
    assert x.std().item() == pytest.approx(S, rel=0.03) and x.mean().item() == pytest.approx(M, abs=0.01)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
def test_heun_converges_to_data_moments(schedule):
    errors = [abs(exact_map(Heun(steps=n, clip_x0=False), schedule)[0] / S - 1) for n in (10, 20, 50, 100)]
    print("heun |std / s - 1| at NFE 19, 39, 99, 199:", [f"{e:.4f}" for e in errors])
    assert all(a > b for a, b in zip(errors, errors[1:]))
    sampler = Heun(steps=100, clip_x0=False)
    assert sampler.nfe(schedule.timesteps) == 199
    x = exact_module(schedule, sampler).sample(16, seed=1)
    ts = sampler.timesteps(schedule.timesteps, alphas_cumprod=schedule.alphas_cumprod).tolist()
    torch.testing.assert_close(x.double(), heun_reference(schedule.alphas_cumprod, ts, make_noise(16, 1)(SHAPE)),
                               rtol=1e-4, atol=1e-5)
    assert errors[-1] < 0.02 and x.std().item() == pytest.approx(S, rel=0.02)


def test_dpmpp_first_step_is_ddim():
    """With one step the multistep term is unused: DPM-Solver++ is DDIM (Lu et al. 2022, Sec. 4.1)."""
    module = exact_module(LinearSchedule(), DDIM(steps=2, clip_x0=False))
    dpmpp = DPMSolverPP(steps=2, spacing="uniform", clip_x0=False)
    torch.testing.assert_close(module.sample(4, seed=2, sampler=dpmpp), module.sample(4, seed=2))


@pytest.mark.parametrize("sampler", [DPMSolverPP(steps=10, clip_x0=False), Heun(steps=25, clip_x0=False)],
                         ids=["dpmpp", "heun"])
@pytest.mark.parametrize("tau", [0.5, 1.3])
def test_temperature_scales_the_initial_noise_only(sampler, tau):
    module = exact_module(LinearSchedule(), sampler)
    assert module.sample(64, seed=3, temperature=tau).std().item() == pytest.approx(
        tau * module.sample(64, seed=3).std().item(), rel=0.02)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
@pytest.mark.parametrize("spacing", SPACING_NAMES)
def test_grids_have_exactly_steps_distinct_points(schedule, spacing):
    sampler = Heun(spacing=spacing)
    for start in (999, 40):
        for steps in (1, 2, 7, 41, 1000):
            ts = Heun(steps=steps, spacing=spacing).timesteps(1000, start, schedule.alphas_cumprod).tolist()
            assert len(ts) == min(steps, start + 1) and ts[0] == start and (steps == 1 or ts[-1] == 0)
            assert all(a > b for a, b in zip(ts, ts[1:]))
    if spacing == "uniform":
        assert sampler.timesteps(1000).tolist() == respaced_timesteps(1000, 18).tolist()


class CountingDenoiser:
    """The exact denoiser, recording every call's (t, x_t)."""

    def __init__(self, schedule):
        self.inner, self.calls = exact_denoiser(schedule), []
        self.alphas_cumprod, self.timesteps = self.inner.alphas_cumprod, self.inner.timesteps

    def __call__(self, x, t):
        self.calls.append((t, x.clone()))
        return self.inner(x, t)


def DPMSolverPPCorrector(**kwargs) -> DPMSolverPP:
    """DPM-Solver++(2M) with the corrector."""
    return DPMSolverPP(corrector=True, **kwargs)


SAMPLERS = [DPMSolverPP, DPMSolverPPCorrector, Heun]


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
def test_nfe_and_callback_count_network_calls(make):
    for steps in (1, 2, 3, 8, 20):
        sampler, denoiser, seen = make(steps=steps), CountingDenoiser(LinearSchedule()), []
        sampler(denoiser, make_noise(2, 0), (1, 2, 2), callback=lambda i, t, x, x0: seen.append((i, t)))
        assert len(denoiser.calls) == sampler.nfe(1000) == len(seen)
        assert [i for i, _ in seen] == list(range(len(seen))) and [t for t, _ in denoiser.calls] == [t for _, t in seen]


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
def test_start_from_a_given_state(make):
    """SDEdit's use: from an exact x_t at t = 300 the same number of steps reaches the data; a start below the number
    of steps leaves fewer timesteps, hence fewer evaluations."""
    schedule, start = LinearSchedule(), 300
    sampler, denoiser = make(steps=20, clip_x0=False), CountingDenoiser(schedule)
    alpha, sigma = schedule.alphas_cumprod[start].sqrt().item(), (1 - schedule.alphas_cumprod[start]).sqrt().item()
    g = torch.Generator().manual_seed(4)
    x_t = alpha * (M + S * torch.randn(64, *SHAPE, generator=g)) + sigma * torch.randn(64, *SHAPE, generator=g)
    x = sampler(denoiser, None, SHAPE, x=x_t, start=start)
    assert denoiser.calls[0][0] == start and torch.equal(denoiser.calls[0][1], x_t)
    assert len(denoiser.calls) == sampler.nfe(1000)
    assert x.std().item() == pytest.approx(S, rel=0.03) and x.mean().item() == pytest.approx(M, abs=0.01)
    denoiser.calls.clear()
    sampler(denoiser, None, SHAPE, x=x_t, start=5)
    assert sampler.timesteps(1000, 5, schedule.alphas_cumprod).tolist() == [5, 4, 3, 2, 1, 0]
    assert len(denoiser.calls) == make(steps=6).nfe(1000) < sampler.nfe(1000)


@pytest.mark.parametrize("make", [DPMSolverPP, Heun], ids=lambda c: c.__name__)
def test_project_sees_model_scale_states_and_is_honoured(make):
    schedule, fixed = LinearSchedule(), torch.full((8, *SHAPE), 0.3)
    sampler, denoiser, seen = make(steps=10, clip_x0=False), CountingDenoiser(schedule), []

    def project(t, x):
        seen.append((t, x.std().item()))
        return fixed if t >= 0 else x + 1

    out = sampler(denoiser, make_noise(8, 5), SHAPE, project=project)
    ts = sampler.timesteps(1000, alphas_cumprod=schedule.alphas_cumprod).tolist()
    assert [t for t, _ in seen] == ts[1:] + [-1]
    assert [t for t, x in denoiser.calls if torch.equal(x, fixed)] == ts[1:]  # every step went on from `fixed`
    torch.testing.assert_close(out, denoiser.inner(fixed, 0)[0] + 1)
    # with an identity hook the state keeps the marginal std of x_t, sqrt(abar s^2 + 1 - abar), not x_t / alpha's
    seen.clear()
    make(steps=30, clip_x0=False)(denoiser, make_noise(64, 6), SHAPE,
                                  project=lambda t, x: (seen.append((t, x.std().item())), x)[1])
    abar = schedule.alphas_cumprod
    for t, std in seen[:-1]:
        assert std == pytest.approx((abar[t] * S**2 + 1 - abar[t]).sqrt().item(), rel=0.1)


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
def test_clip_x0_keeps_predictions_in_the_data_range(make):
    denoiser, x0s = exact_denoiser(LinearSchedule(), mean=0.0, std=1.0), []
    make(steps=5)(denoiser, make_noise(8, 7), SHAPE, callback=lambda i, t, x, x0: x0s.append(x0))
    assert all(x0.abs().max() <= 1 for x0 in x0s)
    out = make(steps=5, clip_x0=False)(denoiser, make_noise(8, 7), SHAPE)
    assert out.abs().max() > 1  # N(0, 1) data leave [-1, 1]: the option does change the result


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kwargs,key", [({"steps": 0}, "sampler.steps=0"), ({"steps": 2.5}, "sampler.steps=2.5"),
                                        ({"steps": True}, "sampler.steps=True"),
                                        ({"spacing": "cosine"}, "sampler.spacing='cosine'")])
def test_bad_values_raise_one_line_config_errors(make, kwargs, key):
    with pytest.raises(ConfigError, match="allowed") as err:
        make(**kwargs)
    assert key in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
def test_steps_and_start_beyond_the_schedule_are_refused(make):
    for call in (lambda: make(steps=20).check(10), lambda: make(steps=5).timesteps(10, start=10)):
        with pytest.raises(ConfigError, match="allowed") as err:
            call()
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
@pytest.mark.parametrize("order", [2, 3])
def test_sde_variant_samples_the_data_distribution(schedule, order):
    # eta = 1 injects noise like DDPM: its samples must converge to N(M, S^2) too (within 1% by 100 NFE).
    sampler = DPMSolverPP(steps=100, order=order, eta=1.0, clip_x0=False)
    x = exact_module(schedule, sampler).sample(64, seed=0)
    assert x.mean().item() == pytest.approx(M, abs=0.005)
    assert x.std().item() == pytest.approx(S, rel=0.01)
    assert not torch.equal(x, exact_module(schedule, sampler).sample(64, seed=1))  # noise is injected


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
def test_sde_noise_stops_below_eta_sigma_min(schedule):
    # noise on the steps from Karras sigma >= eta_sigma_min only: the SDE's path down to there, the ODE's steps after
    def states(sampler, seed=0):
        seen = []
        x = exact_module(schedule, sampler).sample(8, seed=seed, callback=lambda i, t, x_t, x0: seen.append((t, x_t)))
        return seen, x

    sde, hybrid = (DPMSolverPP(steps=30, order=3, eta=1.0, clip_x0=False, eta_sigma_min=m) for m in (0.0, 0.135))
    (path_sde, x_sde), (path_hybrid, x_hybrid) = states(sde), states(hybrid)
    abar = schedule.alphas_cumprod.double()
    sigma = lambda t: float(((1 - abar[t]) / abar[t]).sqrt())  # noqa: E731
    first_ode = next(k for k, (t, _) in enumerate(path_sde) if sigma(t) < 0.135)
    for k, ((t, a), (_, b)) in enumerate(zip(path_sde, path_hybrid)):
        if k <= first_ode:  # reached by SDE steps alike
            assert torch.equal(a, b), k
        else:
            assert not torch.equal(a, b), k
    assert torch.equal(states(hybrid)[1], x_hybrid) and not torch.equal(states(hybrid, seed=1)[1], x_hybrid)
    # above every sigma: the ODE solver itself
    ode = DPMSolverPP(steps=30, order=3, eta=0.0, clip_x0=False)
    never = DPMSolverPP(steps=30, order=3, eta=1.0, clip_x0=False, eta_sigma_min=1e9)
    assert torch.equal(states(never)[1], states(ode)[1])
    # and it still samples the data distribution (closed form)
    x = exact_module(schedule, DPMSolverPP(steps=100, order=3, eta=1.0, clip_x0=False, eta_sigma_min=0.135)).sample(
        64, seed=0)
    assert x.mean().item() == pytest.approx(M, abs=0.005)
    assert x.std().item() == pytest.approx(S, rel=0.01)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
def test_heun_with_churn_samples_the_data_distribution(schedule):
    # Karras' Algorithm 2: churn re-noises before each step; samples must still converge to N(M, S^2).
    sampler = Heun(steps=100, churn=10.0, clip_x0=False)
    x = exact_module(schedule, sampler).sample(256, seed=0)  # std's standard error 0.14%: room for its 0.5% bias
    assert x.mean().item() == pytest.approx(M, abs=0.005)
    assert x.std().item() == pytest.approx(S, rel=0.01)
    assert not torch.equal(x, exact_module(schedule, sampler).sample(64, seed=1))  # noise is injected
    # an empty sigma range switches the churn off: the deterministic sampler again
    off = Heun(steps=50, churn=10.0, churn_sigma_min=1e6, clip_x0=False)
    torch.testing.assert_close(exact_module(schedule, off).sample(4, seed=2),
                               exact_module(schedule, Heun(steps=50, clip_x0=False)).sample(4, seed=2))


@pytest.mark.parametrize("bad,message", [({"eta": 11}, r"sampler.eta=11 is invalid; allowed: 0 <= eta <= 10"),
                                         ({"eta": -0.5}, r"sampler.eta=-0.5 is invalid"),
                                         ({"order": 4}, r"sampler.order=4 is invalid; allowed: 1, 2 or 3"),
                                         ({"corrector": "yes"}, r"sampler.corrector='yes' is invalid; allowed: true"),
                                         ({"eta_sigma_min": -1}, r"sampler.eta_sigma_min=-1 is invalid; allowed: a "),
                                         ({"churn": -1}, r"sampler.churn=-1 is invalid; allowed: a number >= 0"),
                                         ({"churn_sigma_min": 2.0, "churn_sigma_max": 1.0},
                                          r"allowed: 0 <= churn_sigma_min <= churn_sigma_max")])
def test_bad_solver_options_are_refused(bad, message):
    with pytest.raises(ConfigError, match=message):
        (Heun if "churn" in next(iter(bad)) else DPMSolverPP)(**bad)


def lagrange_integral(lams, values, lam_t, lam_s, a, n=20001):
    """int_{lam_t}^{lam_s} a e^{-a (lam_s - l)} P(l) dl for the polynomial P through (lams, values), by the trapezoid
    rule on n points: the quadrature the solver's closed-form weights must reproduce."""
    grid = torch.linspace(lam_t, lam_s, n, dtype=torch.float64)
    poly = sum(v * torch.prod(torch.stack([(grid - lk) / (lj - lk) for k, lk in enumerate(lams) if k != j]), 0)
               if len(lams) > 1 else v * torch.ones_like(grid) for j, (lj, v) in enumerate(zip(lams, values)))
    return torch.trapezoid(a * torch.exp(-a * (lam_s - grid)) * poly, grid)


@pytest.mark.parametrize("eta", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("order", [1, 3])
def test_dpmpp_step_integrates_the_extrapolated_x0_exactly(order, eta):
    """The order-1 and order-3 steps (orders whose weights are exact integrals) against quadrature, noise set to 0."""
    abar_t, abar_s = 0.3, 0.6
    lam = lambda ab: 0.5 * torch.log(torch.tensor(ab / (1 - ab), dtype=torch.float64)).item()  # noqa: E731
    lam_t, lam_s = lam(abar_t), lam(abar_s)
    lams = [lam_t, lam_t - 0.7, lam_t - 1.1][:order]  # unequal past steps
    values = [0.3, -0.2, 0.9][:order]
    x = torch.tensor([[0.4]], dtype=torch.float64)
    points = [(lj, torch.tensor([[v]], dtype=torch.float64)) for lj, v in zip(lams, values)]
    out = dpmpp_step(x, points, lam_t, lam_s, abar_t, abar_s, eta, z=torch.zeros(1, 1, dtype=torch.float64))
    h = lam_s - lam_t
    expected = ((1 - abar_s) / (1 - abar_t)) ** 0.5 * math.exp(-eta * h) * 0.4 \
        + abar_s**0.5 * lagrange_integral(lams, values, lam_t, lam_s, 1 + eta)
    assert out.item() == pytest.approx(expected.item(), rel=1e-7)


def test_sde_step_injects_ddpm_posterior_noise():
    abar_t, abar_s = 0.2, 0.5
    lam = lambda ab: 0.5 * math.log(ab / (1 - ab))  # noqa: E731
    zero = torch.zeros(1, 1, dtype=torch.float64)
    out = dpmpp_step(zero, [(lam(abar_t), zero)], lam(abar_t), lam(abar_s), abar_t, abar_s, eta=1.0,
                     z=0.5 * torch.ones(1, 1, dtype=torch.float64))
    assert out.item() == pytest.approx(0.5 * ddim_coefficients(abar_t, abar_s, 1.0)[2], rel=1e-9)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
def test_third_order_reaches_data_moments_at_20_nfe(schedule):
    slope, offset = exact_map(DPMSolverPP(steps=20, order=3, clip_x0=False), schedule)
    print(f"dpm++(3m) 20 NFE: std / s - 1 = {slope / S - 1:+.5f}")
    assert slope == pytest.approx(S, rel=0.01) and offset == pytest.approx(M, rel=0.01)


@pytest.mark.parametrize("name,cls", [("dpmpp_2m", DPMSolverPP), ("dpmpp_2m_sde", DPMSolverPP),
                                      ("dpmpp_3m_sde", DPMSolverPP), ("dpmpp_2m_sde_pc", DPMSolverPP), ("heun", Heun)])
def test_sampler_configs_instantiate(name, cls):
    sampler = hydra.utils.instantiate(OmegaConf.load(CONF / "sampler" / f"{name}.yaml"))
    assert type(sampler) is cls and sampler.clip_x0 and sampler.spacing == "logsnr"


@pytest.mark.parametrize("name", ["dpmpp_2m", "heun"])
def test_train_and_sample_with_the_solver(tmp_path, name):
    train(compose_train(tmp_path, f"sampler={name}", "sampler.steps=4", "final_samples=4", "logger=none",
                        "callbacks.trajectory.every_n_steps=2"))
    assert (tmp_path / "samples.png").is_file()
    assert any((tmp_path / "trajectories").glob("*.png"))  # the callback saw every evaluation (nfe frames)


class FirstStepOffDenoiser:
    """The exact Gaussian denoiser, except that at the noisiest timestep x0_hat is off by `shift`, as a trained
    network's is where x_t holds almost no signal. Heun's averaged eps turns that disagreement between x0_hat at t and
    at the Euler guess into an x0 off by e^h / 2 times it (h: the step in log-SNR), far outside [-1, 1]."""

    def __init__(self, schedule, shift=0.8):
        self.exact, self.shift = exact_denoiser(schedule), shift
        self.alphas_cumprod, self.timesteps = self.exact.alphas_cumprod, self.exact.timesteps

    def __call__(self, x, t):
        x0, eps = self.exact(x, t)
        if t == self.timesteps - 1:
            abar = self.alphas_cumprod[t].double()
            x0 = x0 + self.shift
            eps = (x - abar.sqrt() * x0) / (1 - abar).sqrt()
        return x0, eps


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
def test_clipped_solvers_converge_to_the_same_ode_solution(schedule):
    """With clip_x0 the ODE is the clipped denoiser's; Heun must solve that one, as DDIM and DPM-Solver++ do (its
    averaged eps once implied an unclipped x0 at the first, near-singular step and converged elsewhere)."""
    denoiser = FirstStepOffDenoiser(schedule)
    x = make_noise(8, 0)((1, 4, 4)).double()
    run = lambda s: s(denoiser, None, (1, 4, 4), x=x.clone(), start=schedule.timesteps - 1)  # noqa: E731
    reference = run(DPMSolverPP(steps=1000, clip_x0=True))
    torch.testing.assert_close(run(DDIM(steps=1000, clip_x0=True)), reference, atol=0.02, rtol=0)
    errors = [float((run(Heun(steps=n, clip_x0=True)) - reference).abs().mean()) for n in (25, 100, 400)]
    print("heun, clipped: mean |x - dpm++(1000)| at 25 / 100 / 400 steps:", [f"{e:.4f}" for e in errors])
    assert errors[-1] < 0.002 and errors[-1] < errors[0]  # unclamped: 0.0047 on cosine, whatever the steps


def test_exponential_weights_integrate_polynomials_through_any_nodes():
    """Nodes on both sides of the step (a corrector's new point at u = h) against quadrature, up to a cubic."""
    h, values = 0.8, [0.5, 0.3, -0.2, 0.9]
    for nodes in ([0.0], [h, 0.0], [h, 0.0, -0.7], [h, 0.0, -0.7, -1.1], [0.0, -0.4, -1.3]):
        for a in (1.0, 2.0, 3.5):
            weights = exponential_weights(nodes, h, a)
            expected = lagrange_integral(nodes, values[: len(nodes)], 0.0, h, a)
            assert sum(w * v for w, v in zip(weights, values)) == pytest.approx(expected.item(), rel=1e-7)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
def test_corrector_raises_the_order_at_no_extra_evaluation(schedule):
    """Closed form: with the corrector the first-order solver (DDIM's step) converges at second order and both
    orders 1 and 2 come closer to the data std at 20 and 50 NFE; the network is still called once per point."""
    def error(order, nfe, corrector):
        sampler = DPMSolverPP(steps=nfe, order=order, corrector=corrector, clip_x0=False)
        return abs(exact_map(sampler, schedule)[0] / S - 1)

    for order in (1, 2):
        for nfe in (20, 50):
            assert error(order, nfe, True) < error(order, nfe, False), (order, nfe)
    plain, corrected = error(1, 25, False) / error(1, 50, False), error(1, 25, True) / error(1, 50, True)
    print(f"error ratio 25 -> 50 NFE: order 1 {plain:.2f}, with the corrector {corrected:.2f}")
    assert plain < 2.5 < 3.2 < corrected
    denoiser, seen = CountingDenoiser(schedule), []
    DPMSolverPP(steps=12, order=3, eta=1.0, corrector=True)(denoiser, make_noise(2, 0), SHAPE,
                                                             callback=lambda i, t, x, x0: seen.append(t))
    assert len(denoiser.calls) == len(seen) == 12


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
def test_corrected_sde_samples_the_data_distribution(schedule):
    """Predictor and corrector share each step's noise: the corrected SDE still converges to N(M, S^2), and the
    corrector changes every state but the first (it retakes steps, it does not add noise)."""
    def run(corrector, steps=100, seed=0):
        seen = []
        sampler = DPMSolverPP(steps=steps, order=2, eta=1.0, corrector=corrector, clip_x0=False)
        x = exact_module(schedule, sampler).sample(64, seed=seed, callback=lambda i, t, x_t, x0: seen.append(x_t))
        return x, seen

    x, _ = run(True)
    assert x.mean().item() == pytest.approx(M, abs=0.005) and x.std().item() == pytest.approx(S, rel=0.01)
    (_, plain), (_, corrected) = run(False, steps=10), run(True, steps=10)
    assert torch.equal(plain[0], corrected[0]) and not any(torch.equal(a, b) for a, b in zip(plain[1:], corrected[1:]))
    # the same noise: the corrected path stays near the plain one (a fresh draw would move it by ~sigma_s)
    assert max((a - b).abs().mean().item() for a, b in zip(plain[1:], corrected[1:])) < 0.1


def test_corrector_projects_after_each_correction():
    schedule, fixed = LinearSchedule(), torch.full((8, *SHAPE), 0.3)
    sampler, denoiser, seen = DPMSolverPPCorrector(steps=10, clip_x0=False), CountingDenoiser(schedule), []
    out = sampler(denoiser, make_noise(8, 5), SHAPE, project=lambda t, x: (seen.append(t), fixed if t >= 0 else x)[1])
    ts = sampler.timesteps(1000, alphas_cumprod=schedule.alphas_cumprod).tolist()
    assert seen == [t for t in ts[1:-1] for _ in range(2)] + [ts[-1], -1]
    assert all(torch.equal(x, fixed) for _, x in denoiser.calls[1:])
    torch.testing.assert_close(out, denoiser.inner(fixed, 0)[0])
