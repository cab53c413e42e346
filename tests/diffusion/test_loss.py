"""diffusion_loss without Lightning: zero for the exact predictor, label dropout at its rate, seeded draws."""

import torch

from difflab.diffusion import Epsilon, LinearSchedule
from difflab.diffusion.loss import bucket_losses, diffusion_loss
from difflab.diffusion.schedules import alpha_sigma

ABAR = LinearSchedule(timesteps=100).alphas_cumprod


def test_exact_eps_predictor_has_zero_loss():
    """Data x0 = 0 give x_t = sigma_t eps, so eps = x_t / sigma_t exactly."""
    def net(x_t, t):
        return x_t / alpha_sigma(ABAR, t, x_t)[1]

    x0 = torch.zeros(8, 1, 4, 4)
    losses, t = diffusion_loss(net, ABAR, Epsilon(), x0, None, torch.Generator().manual_seed(0))
    assert losses.shape == t.shape == (8,)
    torch.testing.assert_close(losses, torch.zeros(8), atol=1e-10, rtol=0)


def test_label_dropout_replaces_labels_by_the_null_class_at_its_rate():
    seen = []

    def net(x_t, t, y):
        seen.append(y)
        return torch.zeros_like(x_t)

    x0, y = torch.zeros(4000, 1, 1, 1), torch.zeros(4000, dtype=torch.long)
    diffusion_loss(net, ABAR, Epsilon(), x0, y, torch.Generator().manual_seed(0), label_dropout=0.25, num_classes=10)
    assert set(seen[0].unique().tolist()) == {0, 10}
    assert abs((seen[0] == 10).float().mean().item() - 0.25) < 0.03


def test_same_generator_seed_same_losses():
    def net(x_t, t):
        return x_t

    x0 = torch.randn(4, 1, 4, 4)
    a = diffusion_loss(net, ABAR, Epsilon(), x0, None, torch.Generator().manual_seed(3))
    b = diffusion_loss(net, ABAR, Epsilon(), x0, None, torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_bucket_losses_average_each_range_of_timesteps_and_skip_empty_ones():
    losses, t = torch.tensor([1.0, 3.0, 10.0, 7.0]), torch.tensor([0, 49, 50, 99])
    assert bucket_losses(losses, t, 100, 4) == {"loss_t0000-0024": 1.0, "loss_t0025-0049": 3.0,
                                                "loss_t0050-0074": 10.0, "loss_t0075-0099": 7.0}
    assert list(bucket_losses(losses[:1], t[:1], 100, 4)) == ["loss_t0000-0024"]
