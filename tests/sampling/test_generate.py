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
