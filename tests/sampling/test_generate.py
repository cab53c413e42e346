"""generate without Lightning: the module's sample is it, eval mode is restored, labels are checked."""

import contextlib
import importlib

import pytest
import torch

from difflab.diffusion import Epsilon, LinearSchedule
from difflab.diffusion.gaussian import GaussianDataNet
from difflab.errors import ConfigError
from difflab.module import DiffusionModule
from difflab.sampling import DDIM, generate

SCHEDULE = LinearSchedule(timesteps=100)
generate_module = importlib.import_module("difflab.sampling.generate")  # the package's name is the function


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



class _Convs(torch.nn.Module):
    """Four convolutions (8 weight tensors) for counting autocast's casts."""

    num_classes = None

    def __init__(self):
        super().__init__()
        self.convs = torch.nn.Sequential(*(torch.nn.Conv2d(1, 1, 3, padding=1) for _ in range(4)))

    def forward(self, x, t, y=None):
        return self.convs(x)


def test_bf16_generation_casts_each_weight_once_and_draws_what_per_call_autocast_draws(monkeypatch):
    """weight_cache holds autocast's bf16 copies of the weights over a sampling loop: one cast per weight instead of
    one per weight and network call, and the same numbers as casting at every call."""
    from torch.profiler import profile

    from difflab.diffusion.denoiser import Denoiser
    from difflab.precision import weight_cache

    def casts(run):
        with torch.no_grad(), profile() as prof:
            out = run()
        return out, sum(e.count for e in prof.key_averages() if e.key == "aten::_to_copy")

    torch.manual_seed(0)
    net, calls, weights = _Convs().eval(), 6, 8
    denoiser = Denoiser(net, SCHEDULE.alphas_cumprod, Epsilon(), autocast_dtype=torch.bfloat16)
    x = torch.randn(4, 1, 8, 8)
    _, per_call = casts(lambda: [denoiser(x, t) for t in range(calls)])

    def held():
        with weight_cache("cpu", torch.bfloat16):
            return [denoiser(x, t) for t in range(calls)]

    _, once = casts(held)
    assert per_call >= calls * weights and once <= per_call - (calls - 1) * weights

    sampler = DDIM(steps=calls, clip_x0=False)
    draw = lambda: generate(net, SCHEDULE.alphas_cumprod, Epsilon(), sampler, (1, 8, 8), 4, seed=1,  # noqa: E731
                            autocast_dtype=torch.bfloat16)
    images, in_generate = casts(draw)
    monkeypatch.setattr(generate_module, "weight_cache", lambda device, dtype: contextlib.nullcontext())
    uncached, without_cache = casts(draw)
    assert without_cache - in_generate == (calls - 1) * weights and torch.equal(images, uncached)
