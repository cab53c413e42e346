"""diffusion_loss without Lightning: zero for the exact predictor, label dropout at its rate, seeded draws."""

import pytest
import torch

from difflab.diffusion import Epsilon, LinearSchedule
from difflab.diffusion.gaussian import GaussianProcessNet
from difflab.diffusion.loss import StepLosses, bucket_losses, diffusion_loss
from difflab.diffusion.objectives import EDMPrecond, Flow, X0
from difflab.diffusion.processes import EDM, RectifiedFlow
from difflab.diffusion.schedules import alpha_sigma

SCHEDULE = LinearSchedule(timesteps=100)
ABAR = SCHEDULE.alphas_cumprod


def test_exact_eps_predictor_has_zero_loss():
    """Data x0 = 0 give x_t = sigma_t eps, so eps = x_t / sigma_t exactly."""
    def net(x_t, t):
        return x_t / alpha_sigma(ABAR, t, x_t)[1]

    x0 = torch.zeros(8, 1, 4, 4)
    losses, t = diffusion_loss(net, SCHEDULE, Epsilon(), x0, None, torch.Generator().manual_seed(0))
    assert losses.shape == t.shape == (8,)
    torch.testing.assert_close(losses, torch.zeros(8), atol=1e-10, rtol=0)


def test_label_dropout_replaces_labels_by_the_null_class_at_its_rate():
    seen = []

    def net(x_t, t, y):
        seen.append(y)
        return torch.zeros_like(x_t)

    x0, y = torch.zeros(4000, 1, 1, 1), torch.zeros(4000, dtype=torch.long)
    diffusion_loss(net, SCHEDULE, Epsilon(), x0, y, torch.Generator().manual_seed(0), label_dropout=0.25, num_classes=10)
    assert set(seen[0].unique().tolist()) == {0, 10}
    assert abs((seen[0] == 10).float().mean().item() - 0.25) < 0.03


def test_same_generator_seed_same_losses():
    def net(x_t, t):
        return x_t

    x0 = torch.randn(4, 1, 4, 4)
    a = diffusion_loss(net, SCHEDULE, Epsilon(), x0, None, torch.Generator().manual_seed(3))
    b = diffusion_loss(net, SCHEDULE, Epsilon(), x0, None, torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_bucket_losses_average_each_range_of_timesteps_and_skip_empty_ones():
    losses, t = torch.tensor([1.0, 3.0, 10.0, 7.0]), torch.tensor([0, 49, 50, 99])
    assert bucket_losses(losses, t, SCHEDULE, 4) == {"loss_t0000-0024": 1.0, "loss_t0025-0049": 3.0,
                                                     "loss_t0050-0074": 10.0, "loss_t0075-0099": 7.0}
    assert list(bucket_losses(losses[:1], t[:1], SCHEDULE, 4)) == ["loss_t0000-0024"]


def test_bucket_losses_of_a_continuous_process_use_its_fraction_of_noise():
    losses = torch.tensor([1.0, 3.0, 10.0, 7.0])
    assert bucket_losses(losses, torch.tensor([0.0, 0.49, 0.5, 1.0]), RectifiedFlow(), 2) == \
        {"loss_t0.00-0.50": 2.0, "loss_t0.50-1.00": 8.5}
    sigma = torch.tensor([0.002, 0.01, 80.0, 500.0])  # below sigma_min / above sigma_max fall in the end buckets
    assert bucket_losses(losses, sigma, EDM(), 2) == {"loss_t0.00-0.50": 2.0, "loss_t0.50-1.00": 8.5}


@pytest.mark.parametrize("process, objective", [(RectifiedFlow(), Flow()), (RectifiedFlow(t_sampling="uniform"), X0()),
                                                (EDM(), EDMPrecond()), (SCHEDULE, EDMPrecond())],
                         ids=["rf-flow", "rf-uniform-x0", "edm-edm", "linear-edm"])
def test_the_loss_of_the_best_predictor_is_the_bayes_error(process, objective):
    """Data N(m, s^2): the exact denoiser's loss is the irreducible error of each objective, Var(x0 | x_t) =
    s^2 sigma^2 / (alpha^2 s^2 + sigma^2) per pixel, carried into the objective's space by x0_error_scale."""
    m, s = 0.1, 0.5
    g = torch.Generator().manual_seed(0)
    x0 = m + s * torch.randn(8192, 1, 2, 2, generator=g, dtype=torch.float64)
    exact = GaussianProcessNet(process, objective, m, s)
    best, t = diffusion_loss(exact, process, objective, x0, None, torch.Generator().manual_seed(1))
    worse, _ = diffusion_loss(lambda x, c: exact(x, c) * 1.1, process, objective, x0, None,
                              torch.Generator().manual_seed(1))
    alpha, sigma = process.alpha_sigma(t)
    bayes = s**2 * sigma**2 / (alpha**2 * s**2 + sigma**2) * objective.x0_error_scale(alpha, sigma)
    assert (best.detach() / bayes).mean().item() == pytest.approx(1.0, abs=0.03)  # 32768 pixels: std 0.008
    assert best.mean() < worse.mean()


def test_step_losses_pool_an_optimizer_steps_batches_and_restart_with_the_next():
    step = StepLosses(SCHEDULE, 4)
    assert step.add(torch.tensor([1.0]), torch.tensor([0]), first=True).tolist() == [1.0]
    assert step.add(torch.tensor([3.0, 5.0]), torch.tensor([30, 99]), first=False).tolist() == [1.0, 3.0, 5.0]
    assert step.bucketed() == {"loss_t0000-0024": 1.0, "loss_t0025-0049": 3.0, "loss_t0075-0099": 5.0}
    assert step.add(torch.tensor([7.0]), torch.tensor([0]), first=True).tolist() == [7.0]
