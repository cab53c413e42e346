"""The variational bound, checked against closed forms for quantised Gaussian data, whose exact denoiser is linear.

Pixels are z ~ N(M, S^2) quantised to 8 bits. GaussianDataNet predicts x0_hat = M + g_t (x_t - alpha_t M), so every
E[L_t] is a function of E[(x0 - M)^2] alone and the bound has a closed form given the 256 level probabilities.
"""

import math

import numpy as np
import pytest
import torch
from torch.special import erfc

from difflab.diffusion import CosineSchedule, Denoiser, Epsilon, LinearSchedule, Score, V
from difflab.diffusion.denoiser import level_table
from difflab.diffusion.gaussian import GaussianDataNet, GaussianProcessNet
from difflab.diffusion.likelihood import (
    bits_per_dim,
    discretized_gaussian_log_likelihood,
    normal_kl,
    posterior_coefficients,
    prior_kl,
    stratified_timesteps,
    timestep_strata,
    vlb_terms,
)
from difflab.diffusion.objectives import EDMPrecond, Flow
from difflab.diffusion.processes import EDM, RectifiedFlow
from difflab.errors import ConfigError
from difflab.sampling.steps import ddim_coefficients

M, S = 0.1, 0.25
F64 = torch.float64
LEVELS = torch.arange(256, dtype=F64) * 2 / 255 - 1
EDGES = torch.cat([torch.tensor([-math.inf]), (LEVELS[1:] + LEVELS[:-1]) / 2, torch.tensor([math.inf])]).double()
LO, HI = EDGES[:-1], EDGES[1:]
SCHEDULES = pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])


def phi(x):
    """Standard normal CDF; torch.special.ndtr loses the lower tail (it returns 0 at -9)."""
    return erfc(-x / math.sqrt(2)) / 2


def bin_mass(lo, hi, mean, std):
    """P(lo < X < hi) for X ~ N(mean, std^2), taken in the smaller tail."""
    a, b = (lo - mean) / std, (hi - mean) / std
    return torch.where(a > 0, phi(-a) - phi(-b), phi(b) - phi(a))


def gain(abar: float, std: float = S) -> float:
    """x0_hat = M + gain (x_t - alpha M): E[x0 | x_t] for continuous N(M, S^2) data."""
    return math.sqrt(abar) * std**2 / (abar * std**2 + 1 - abar)


def quantised_gaussian(n: int, size: int, seed: int, mean: float = M, std: float = S) -> torch.Tensor:
    """[n x 1 x size x size] float64 8-bit images, pixels z ~ N(M, S^2) quantised to k = round((z + 1) 255 / 2)."""
    z = mean + std * torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return 2 * ((z + 1) * 255 / 2).round().clamp(0, 255) / 255 - 1


def level_frequencies(x0: torch.Tensor) -> torch.Tensor:
    """[N x 256] fraction of each image's pixels at each level."""
    k = ((x0 + 1) * 255 / 2).round().long().flatten(1)
    return torch.nn.functional.one_hot(k, 256).double().mean(1)


def gaussian_denoiser(abar, objective) -> Denoiser:
    return Denoiser(GaussianDataNet(abar, objective, M, S), abar, objective)


def decoder_nll_per_level(abar0: float, nodes: int = 100) -> torch.Tensor:
    """E_eps[-log p(x0 = level k | x_0)] [256], by Gauss-Hermite quadrature over eps."""
    eps, w = (torch.from_numpy(a) for a in np.polynomial.hermite_e.hermegauss(nodes))
    alpha, sigma = math.sqrt(abar0), math.sqrt(1 - abar0)
    x0_hat = M + gain(abar0) * (alpha * LEVELS[:, None] + sigma * eps - alpha * M)  # [256 x nodes]
    return -(bin_mass(LO[:, None], HI[:, None], x0_hat, sigma).log() * w).sum(1) / math.sqrt(2 * math.pi)


def expected_terms(abar: torch.Tensor, w: torch.Tensor, variance: str = "posterior"):
    """E[prior], E[L_t] for t = 1..T-1, E[decoder] per dimension in nats, for pixels i.i.d. on the levels with
    probabilities w [..., 256]: [...], [... x T-1], [...]."""
    ab = abar.tolist()
    var_x0, mean_sq = (w * (LEVELS - M) ** 2).sum(-1), (w * LEVELS**2).sum(-1)
    prior = 0.5 * (ab[-1] * mean_sq + (1 - ab[-1]) - math.log1p(-ab[-1]) - 1)
    kl = []
    for t in range(1, len(ab)):
        # DDPM's step, from the sampler: mean a x0_hat + b eps_hat. With the truth it is q's mean, so the two
        # differ by (a - b alpha / sigma)(x0 - x0_hat), and x0 - x0_hat = (1 - g alpha)(x0 - M) - g sigma eps.
        a, b, c = ddim_coefficients(ab[t], ab[t - 1], 1.0)
        p_std = ddim_coefficients(ab[t], ab[t - 1], 1.0, variance == "beta")[2]  # the model's
        alpha, sigma, g = math.sqrt(ab[t]), math.sqrt(1 - ab[t]), gain(ab[t])
        err = (1 - g * alpha) ** 2 * var_x0 + (g * sigma) ** 2
        mean_gap_sq = (a - b * alpha / sigma) ** 2 * err
        kl.append(0.5 * (math.log(p_std**2 / c**2) + c**2 / p_std**2 - 1 + mean_gap_sq / p_std**2))
    return prior, torch.stack(kl, -1), (w * decoder_nll_per_level(ab[0])).sum(-1)


def expected_bound(abar: torch.Tensor, w: torch.Tensor, variance: str = "posterior") -> torch.Tensor:
    """E[L] per dimension in nats: [...]."""
    prior, kl, decoder = expected_terms(abar, w, variance)
    return prior + kl.sum(-1) + decoder


def replayed_bound(abar, x0: torch.Tensor, seed: int, variance: str, mean: float = M, std: float = S) -> torch.Tensor:
    """The bound in nats [N] at the very draws vlb_terms documents (eps for t = 0, then t = 1..T-1), from scratch."""
    g, ab, dtype, x0 = torch.Generator().manual_seed(seed), abar.tolist(), x0.dtype, x0.double()

    def draw(t):
        alpha, sigma = math.sqrt(ab[t]), math.sqrt(1 - ab[t])
        x_t = alpha * x0 + sigma * torch.randn(x0.shape, generator=g, dtype=dtype).double()
        return x_t, mean + gain(ab[t], std) * (x_t - alpha * mean)

    k = ((x0 + 1) * 255 / 2).round().long()
    total = 0.5 * (ab[-1] * x0**2 + (1 - ab[-1]) - math.log1p(-ab[-1]) - 1)
    total = total - bin_mass(LO[k], HI[k], draw(0)[1], math.sqrt(1 - ab[0])).log()
    for t in range(1, len(ab)):
        x_t, x0_hat = draw(t)
        a, b, c = ddim_coefficients(ab[t], ab[t - 1], 1.0)
        p_std = ddim_coefficients(ab[t], ab[t - 1], 1.0, variance == "beta")[2]  # the model's
        alpha, sigma = math.sqrt(ab[t]), math.sqrt(1 - ab[t])
        mean_q = a * x0 + b * (x_t - alpha * x0) / sigma
        mean_p = a * x0_hat + b * (x_t - alpha * x0_hat) / sigma
        total = total + 0.5 * (math.log(p_std**2 / c**2) + c**2 / p_std**2 - 1 + (mean_q - mean_p) ** 2 / p_std**2)
    return total.flatten(1).sum(1)


def test_normal_kl_matches_the_closed_form():
    m1, v1 = torch.tensor([0.3, -1.0, 2.0], dtype=F64), torch.tensor([1.0, 0.2, 3.0], dtype=F64)
    m2, v2 = torch.tensor([0.3, 0.5, -0.7], dtype=F64), torch.tensor([1.0, 1.5, 0.4], dtype=F64)
    expected = 0.5 * torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / (2 * v2) - 0.5
    torch.testing.assert_close(normal_kl(m1, v1.log(), m2, v2.log()), expected, rtol=1e-12, atol=1e-15)
    assert torch.all(normal_kl(m1, v1.log(), m1, v1.log()) == 0)


@pytest.mark.parametrize("mean", [-1.3, -0.99, 0.0, 0.42, 1.0])
@pytest.mark.parametrize("scale", [1e-4, 0.01, 0.3, 5.0])
def test_discretized_likelihood_is_a_distribution_over_the_256_bins(mean, scale):
    mean, log_scale = torch.tensor(mean, dtype=F64), torch.tensor(math.log(scale), dtype=F64)
    logp = discretized_gaussian_log_likelihood(LEVELS, mean, log_scale)
    assert logp.isfinite().all()  # even 10^4 standard deviations out
    torch.testing.assert_close(logp.exp().sum(), torch.tensor(1.0, dtype=F64), rtol=1e-12, atol=0)
    torch.testing.assert_close(logp.exp(), bin_mass(LO, HI, mean, log_scale.exp()), rtol=1e-9, atol=1e-300)


@SCHEDULES
def test_prior_kl_vanishes_at_T_1000(schedule):
    x0 = quantised_gaussian(4, 8, seed=0)
    assert prior_kl(x0, schedule.alphas_cumprod).max() / 64 < 1e-4  # nats per dimension


def test_model_step_is_the_ddpm_sampler_step():
    abar, t = CosineSchedule().alphas_cumprod, torch.tensor([1, 2, 10, 500, 999])
    coef_x0, coef_xt, var, beta = posterior_coefficients(abar, t)
    for i, s in enumerate(t.tolist()):
        # DDPM's mean a x0_hat + b (x_t - alpha x0_hat) / sigma, noise std c (posterior) or sqrt(beta) ("large").
        a, b, c = ddim_coefficients(float(abar[s]), float(abar[s - 1]), 1.0)
        large = ddim_coefficients(float(abar[s]), float(abar[s - 1]), 1.0, True)[2]
        alpha, sigma = math.sqrt(abar[s]), math.sqrt(1 - abar[s])
        got, want = [coef_x0[i], coef_xt[i], var[i], beta[i]], [a - b * alpha / sigma, b / sigma, c**2, large**2]
        assert all(math.isclose(x, y, rel_tol=1e-8) for x, y in zip(got, want)), (s, got, want)


@SCHEDULES
def test_bound_matches_closed_form_for_quantised_gaussian_data(schedule):
    abar, p = schedule.alphas_cumprod, bin_mass(LO, HI, M, S)
    entropy = -(p * p.log2()).sum().item()
    closed = expected_bound(abar, p).item() / math.log(2)
    x0 = quantised_gaussian(128, 16, seed=0)  # 32768 pixels: SE ~0.012 bits/dim, mostly from eps at small t
    bpd = bits_per_dim(gaussian_denoiser(abar, Epsilon()), x0, torch.Generator().manual_seed(1), batch_size=2048)
    this_batch = expected_bound(abar, level_frequencies(x0)).mean().item() / math.log(2)
    mean, se = bpd.mean().item(), bpd.std().item() / math.sqrt(len(bpd))
    print(
        f"\n{type(schedule).__name__}, T={len(abar)}, {tuple(x0.shape)}: entropy {entropy:.4f}, "
        f"closed form {closed:.4f} (gap {closed - entropy:.4f}; {this_batch:.4f} for this batch's levels), "
        f"implementation {mean:.4f} +- {se:.4f} bits/dim (difference {(mean - closed) / se:+.1f} SE)"
    )
    assert entropy < closed and entropy < mean
    assert abs(mean - closed) < 0.02 and abs(mean - this_batch) < 0.02


@pytest.mark.parametrize("process, objective", [(RectifiedFlow(), Flow()), (EDM(), EDMPrecond())], ids=["rf", "edm"])
def test_bound_of_a_continuous_process_is_the_closed_form_of_its_levels(process, objective):
    """A continuous process is bounded over its level table: with the exact denoiser the estimate is
    that chain's closed form, above the data's entropy and below the cosine schedule's bound (gap 0.29 against
    0.57 bits/dim: the levels reach sigma/alpha = 0.002, where the decoder's Gaussian is narrower than a bin)."""
    levels = level_table(process)
    abar, p = levels.alphas_cumprod, bin_mass(LO, HI, M, S)
    entropy = -(p * p.log2()).sum().item()
    x0 = quantised_gaussian(128, 16, seed=0)
    denoiser = Denoiser(GaussianProcessNet(process, objective, M, S), levels, objective)
    bpd = bits_per_dim(denoiser, x0, torch.Generator().manual_seed(1), batch_size=2048)
    this_batch = expected_bound(abar, level_frequencies(x0)).mean().item() / math.log(2)
    assert abs(bpd.mean().item() - this_batch) < 0.02
    cosine = expected_bound(CosineSchedule().alphas_cumprod, p).item() / math.log(2)
    assert entropy < expected_bound(abar, p).item() / math.log(2) < cosine


@SCHEDULES
@pytest.mark.parametrize("variance", ["posterior", "beta"])
@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["float64", "float32"])
def test_terms_equal_the_bound_recomputed_at_the_same_draws(schedule, variance, dtype):
    abar, x0 = schedule.alphas_cumprod, quantised_gaussian(3, 8, seed=4).to(dtype)
    terms = vlb_terms(gaussian_denoiser(abar, Epsilon()), x0, torch.Generator().manual_seed(7), variance=variance)
    assert terms.kl.shape == (3, len(abar) - 1) and terms.total.dtype == F64
    rtol = 1e-9 if dtype == F64 else 1e-6  # float32: x_t and x0_hat carry rounding errors of ~1e-7
    torch.testing.assert_close(terms.total, replayed_bound(abar, x0, 7, variance), rtol=rtol, atol=0)


def test_x0_hat_is_not_clipped():
    """The bound is for DDPM as sampled, without clipping: data crowding x = 1 push x0_hat past it."""
    abar, mean, std = LinearSchedule().alphas_cumprod, 0.9, 0.5
    x0 = quantised_gaussian(3, 8, seed=6, mean=mean, std=std)
    den = Denoiser(GaussianDataNet(abar, Epsilon(), mean, std), abar, Epsilon())
    got = vlb_terms(den, x0, torch.Generator().manual_seed(8)).total
    torch.testing.assert_close(got, replayed_bound(abar, x0, 8, "posterior", mean, std), rtol=1e-9, atol=0)


@pytest.mark.parametrize("objective", [V(), Score()], ids=["v", "score"])
def test_every_objective_gives_the_same_bound(objective):
    abar, x0 = CosineSchedule().alphas_cumprod, quantised_gaussian(4, 8, seed=2)
    ref = bits_per_dim(gaussian_denoiser(abar, Epsilon()), x0, torch.Generator().manual_seed(5), batch_size=2048)
    got = bits_per_dim(gaussian_denoiser(abar, objective), x0, torch.Generator().manual_seed(5), batch_size=2048)
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=0)


def test_monte_carlo_timesteps_are_unbiased():
    abar, x0, seeds, k = LinearSchedule().alphas_cumprod, quantised_gaussian(4, 8, seed=3), 40, 25
    den = gaussian_denoiser(abar, Epsilon())
    prior, kl, decoder = (64 * x.mean(0) for x in expected_terms(abar, level_frequencies(x0)))  # nats per image
    exact = (prior + kl.sum() + decoder).item()
    runs = [vlb_terms(den, x0, torch.Generator().manual_seed(s), timesteps=k) for s in range(seeds)]
    est = torch.stack([r.total.mean() for r in runs])
    z = (est.mean().item() - exact) / (est.std().item() / math.sqrt(seeds))
    print(f"\nK={k} timesteps, {seeds} seeds: {est.mean():.1f} vs exact {exact:.1f} nats per image ({z:+.1f} SE)")
    assert abs(z) < 4
    # Sharper: given its timesteps, each run is unbiased over the eps draws.
    given_t = torch.stack([prior + kl[r.timesteps - 1] @ r.weights + decoder for r in runs])
    z = ((est - given_t).mean() / ((est - given_t).std() / math.sqrt(seeds))).item()
    assert abs(z) < 4, z


def test_stratified_timesteps_estimate_the_sum_over_t_without_bias():
    for T, K in [(1000, 25), (1000, 999), (10, 3), (2, 1)]:
        edges = timestep_strata(T, K)
        assert edges[0] == 1 and edges[-1] == T and torch.all(edges[1:] > edges[:-1]), (T, K, edges)
    g = torch.Generator().manual_seed(0)
    t = torch.stack([stratified_timesteps(10, 3, g)[0] for _ in range(6000)])
    sizes = timestep_strata(10, 3).diff()
    want = 6000 / sizes.repeat_interleave(sizes)  # each t equally likely within its stratum
    assert torch.all((torch.bincount(t.flatten(), minlength=10)[1:] - want).abs() < 0.1 * want)
    _, kl, _ = expected_terms(LinearSchedule().alphas_cumprod, bin_mass(LO, HI, M, S))  # the real profile, ~1/t
    draws = torch.stack([kl[t - 1] @ w for t, w in (stratified_timesteps(1000, 25, g) for _ in range(4000))])
    z = ((draws.mean() - kl.sum()) / (draws.std() / math.sqrt(len(draws)))).item()
    print(f"\nK=25 stratified timesteps: sd {draws.std() / kl.sum():.1%} of sum_t E[L_t] per draw, bias {z:+.1f} SE")
    assert abs(z) < 4


def test_seeded_bound_repeats_whatever_the_batching_and_for_one_image():
    abar, x0 = LinearSchedule(timesteps=100).alphas_cumprod, quantised_gaussian(3, 4, seed=5)
    den = gaussian_denoiser(abar, Epsilon())

    def run(x, batch_size=256, k=None):
        return bits_per_dim(den, x, torch.Generator().manual_seed(3), timesteps=k, batch_size=batch_size)

    torch.testing.assert_close(run(x0, batch_size=3), run(x0), rtol=1e-12, atol=0)
    assert torch.equal(run(x0, k=10), run(x0, k=10))
    assert not torch.equal(run(x0, k=10), bits_per_dim(den, x0, torch.Generator().manual_seed(4), timesteps=10))
    one = run(x0[:1])
    assert one.shape == (1,) and one.isfinite().all() and torch.equal(one, run(x0[:1], batch_size=1))

    class LabelledNet(GaussianDataNet):
        def forward(self, x_t, t, y=None):
            assert y is not None and y.shape == t.shape
            return super().forward(x_t, t)

    labelled = Denoiser(LabelledNet(abar, Epsilon(), M, S), abar, Epsilon(), y=torch.tensor([0, 1, 2]))
    got = bits_per_dim(labelled, x0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, run(x0), rtol=1e-12, atol=0)


def test_bad_arguments_are_refused():
    den, x0 = gaussian_denoiser(LinearSchedule(timesteps=10).alphas_cumprod, Epsilon()), quantised_gaussian(1, 4, 0)
    with pytest.raises(ConfigError, match="variance"):
        vlb_terms(den, x0, variance="large")
    for k in (0, 10, 2.5):
        with pytest.raises(ConfigError, match="timesteps"):
            vlb_terms(den, x0, timesteps=k)
    with pytest.raises(ConfigError, match="x0"):
        vlb_terms(den, (x0 + 1) / 2)
