"""Heun's method (sampling/heun.py) against closed forms: Karras et al.'s Algorithm 1 written apart, convergence to
the data moments for Gaussian data, churn, and the clamped ODE that DDIM and DPM-Solver++ solve too."""

import pytest
import torch

from difflab.sampling import DDIM, DPMSolverPP, Heun, make_noise
from tests.sampling.exact import M, S, SCHEDULE_IDS, SCHEDULES, SHAPE, exact_denoiser, exact_map, exact_module


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
    """With clip_x0 the ODE is the clipped denoiser's; Heun must solve that one, as DDIM and DPM-Solver++ do: its
    averaged eps implies an x0 of its own, which must be clamped too, or the first, near-singular step leaves the
    data range and Heun converges elsewhere."""
    denoiser = FirstStepOffDenoiser(schedule)
    x = make_noise(8, 0)((1, 4, 4)).double()
    run = lambda s: s(denoiser, None, (1, 4, 4), x=x.clone(), start=schedule.timesteps - 1)  # noqa: E731
    reference = run(DPMSolverPP(steps=1000, clip_x0=True))
    torch.testing.assert_close(run(DDIM(steps=1000, clip_x0=True)), reference, atol=0.02, rtol=0)
    errors = [float((run(Heun(steps=n, clip_x0=True)) - reference).abs().mean()) for n in (25, 100, 400)]
    print("heun, clipped: mean |x - dpm++(1000)| at 25 / 100 / 400 steps:", [f"{e:.4f}" for e in errors])
    assert errors[-1] < 0.002 and errors[-1] < errors[0]  # an unclamped averaged x0 stays off whatever the steps
