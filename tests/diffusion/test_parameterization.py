import pytest
import torch

from difflab.diffusion import Epsilon, MinSNR, Score, Uniform, V
from difflab.diffusion import parameterization as p
from difflab.diffusion.schedules import CosineSchedule, alpha_sigma


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 1, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(64, 1, 4, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (64,), generator=g)
    alpha, sigma = alpha_sigma(CosineSchedule().alphas_cumprod, t, x0)
    return x0, eps, alpha, sigma, alpha * x0 + sigma * eps


def test_eps_x0_v_score_round_trip(batch):
    x0, eps, alpha, sigma, x_t = batch
    torch.testing.assert_close(p.x0_from_eps(x_t, eps, alpha, sigma), x0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(p.eps_from_x0(x_t, x0, alpha, sigma), eps, rtol=1e-6, atol=1e-6)
    v = p.v_from_x0_eps(x0, eps, alpha, sigma)
    torch.testing.assert_close(p.x0_from_v(x_t, v, alpha, sigma), x0)
    torch.testing.assert_close(p.eps_from_v(x_t, v, alpha, sigma), eps)
    torch.testing.assert_close(p.eps_from_score(p.score_from_eps(eps, sigma), sigma), eps)


@pytest.mark.parametrize("objective", [Epsilon(), V(), Score()])
def test_objective_reads_its_own_target(batch, objective):
    x0, eps, alpha, sigma, x_t = batch
    out = objective.target(x0, eps, alpha, sigma)
    torch.testing.assert_close(objective.from_x0_eps(x0, eps, x_t, alpha, sigma), out)
    x0_hat, eps_hat = objective.to_x0_eps(out, x_t, alpha, sigma)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(eps_hat, eps, rtol=1e-5, atol=1e-5)
    assert objective.loss(out, x0, eps, alpha, sigma).abs().max() == 0


@pytest.mark.parametrize("objective_cls", [Epsilon, V, Score])
def test_x0_error_scale(batch, objective_cls):
    """||target(pred) - target||^2 = x0_error_scale * ||x0_hat - x0||^2 at fixed x_t."""
    x0, eps, alpha, sigma, x_t = batch
    objective = objective_cls()
    x0_hat = x0 + 0.1
    out = objective.from_x0_eps(x0_hat, p.eps_from_x0(x_t, x0_hat, alpha, sigma), x_t, alpha, sigma)
    err = ((out - objective.target(x0, eps, alpha, sigma)) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(err, objective.x0_error_scale(alpha, sigma).flatten() * 0.01)


def test_score_uniform_is_denoising_score_matching_equal_to_eps_loss(batch):
    x0, eps, alpha, sigma, x_t = batch
    eps_hat = eps + 0.3 * torch.randn_like(eps)
    score_loss = Score().loss(p.score_from_eps(eps_hat, sigma), x0, eps, alpha, sigma)
    torch.testing.assert_close(score_loss, Epsilon().loss(eps_hat, x0, eps, alpha, sigma).float())


def test_min_snr_weights_agree_across_objectives(batch):
    """Min-SNR defines one x0-space weighting: the same prediction error costs the same under every objective."""
    x0, eps, alpha, sigma, x_t = batch
    x0_hat = x0 + 0.05 * torch.randn_like(x0)
    eps_hat = p.eps_from_x0(x_t, x0_hat, alpha, sigma)
    losses = []
    for obj in (Epsilon(MinSNR(5.0)), V(MinSNR(5.0)), Score(MinSNR(5.0))):
        losses.append(obj.loss(obj.from_x0_eps(x0_hat, eps_hat, x_t, alpha, sigma), x0, eps, alpha, sigma))
    snr = (alpha / sigma).flatten() ** 2
    expected = torch.clamp(snr, max=5.0) * ((x0_hat - x0) ** 2).flatten(1).mean(1)
    for loss in losses:
        torch.testing.assert_close(loss, expected.float(), rtol=1e-4, atol=1e-7)
    assert Uniform()(Epsilon(), alpha, sigma).eq(1).all()
