"""DPM-Solver++ (sampling/dpm_solver.py) against closed forms: the paper's Algorithm 2 written apart, the data moments
for Gaussian data, its exponential integrator against quadrature, the SDE variants and the corrector."""

import math

import pytest
import torch

from difflab.diffusion import LinearSchedule
from difflab.sampling import DDIM, DPMSolverPP, make_noise
from difflab.sampling.dpm_solver import dpmpp_step, exponential_weights
from difflab.sampling.steps import ddim_coefficients
from tests.sampling.exact import (M, S, SCHEDULE_IDS, SCHEDULES, SHAPE, CountingDenoiser, DPMSolverPPCorrector,
                                  exact_map, exact_module)


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


def test_dpmpp_first_step_is_ddim():
    """With one step the multistep term is unused: DPM-Solver++ is DDIM (Lu et al. 2022, Sec. 4.1)."""
    module = exact_module(LinearSchedule(), DDIM(steps=2, clip_x0=False))
    dpmpp = DPMSolverPP(steps=2, spacing="uniform", clip_x0=False)
    torch.testing.assert_close(module.sample(4, seed=2, sampler=dpmpp), module.sample(4, seed=2))


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
