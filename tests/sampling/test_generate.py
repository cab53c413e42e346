"""generate without Lightning: the module's sample is it, eval mode is restored, labels are checked."""

import pytest
import torch

from difflab.diffusion import Epsilon, LinearSchedule
from difflab.diffusion.gaussian import GaussianDataNet
from difflab.errors import ConfigError
from difflab.module import DiffusionModule
from difflab.sampling import DDIM, generate

SCHEDULE = LinearSchedule(timesteps=100)


def test_generate_is_what_the_module_samples_and_restores_train_mode():
    net = GaussianDataNet(SCHEDULE.alphas_cumprod, Epsilon(), 0.5, 0.25).train()
    x = generate(net, SCHEDULE.alphas_cumprod, Epsilon(), DDIM(steps=5, clip_x0=False), (1, 4, 4), 3, seed=0)
    assert net.training and x.shape == (3, 1, 4, 4) and x.dtype == torch.float32
    module = DiffusionModule(net, SCHEDULE, Epsilon(), (1, 4, 4), sampler=DDIM(steps=5, clip_x0=False))
    assert torch.equal(module.sample(3, seed=0), x)


def test_labels_for_an_unconditional_net_are_one_line_error():
    net = GaussianDataNet(SCHEDULE.alphas_cumprod, Epsilon(), 0.5, 0.25)
    with pytest.raises(ConfigError, match="unconditional"):
        generate(net, SCHEDULE.alphas_cumprod, Epsilon(), DDIM(steps=5), (1, 4, 4), 2, y=torch.zeros(2, dtype=int))


class _ConvNet(torch.nn.Module):
    """A network small enough to compile in seconds: one convolution scaled by the noise level."""

    num_classes = None

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x, t, y=None):
        return self.conv(x) * (1 + t.float().reshape(-1, 1, 1, 1) / 100)


@pytest.mark.slow
def test_compiled_generation_draws_the_eager_samples_with_one_graph_for_every_batch():
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    net = _ConvNet()
    sampler = DDIM(steps=4, clip_x0=False)
    args = (net, SCHEDULE.alphas_cumprod, Epsilon(), sampler, (1, 4, 4), 5)
    eager = generate(*args, seed=0, batch_size=2)
    torch._dynamo.reset()
    counters.clear()
    compiled = generate(*args, seed=0, batch_size=2, compile=True)  # batches of 2, 2 and 1 (padded to 2)
    assert compiled.shape == (5, 1, 4, 4)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
    # sample i still depends only on (seed, i): the padded last batch does not move the others
    torch.testing.assert_close(generate(*args[:-1], 3, seed=0, batch_size=2, compile=True), eager[:3],
                               atol=1e-5, rtol=1e-5)


def test_unknown_compile_mode_is_one_line_error():
    net = GaussianDataNet(SCHEDULE.alphas_cumprod, Epsilon(), 0.5, 0.25)
    with pytest.raises(ConfigError, match=r"compile=fast is not valid; allowed: null \(eager\), true, default"):
        generate(net, SCHEDULE.alphas_cumprod, Epsilon(), DDIM(steps=5), (1, 4, 4), 2, compile="fast")
