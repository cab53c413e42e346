"""UNet: shapes at odd and even sizes, zero start, conditioning, validation, gradients, presets."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from difflab.errors import ConfigError
from difflab.nets import UNet

CONF = Path(__file__).resolve().parents[2] / "conf"


def tiny(channels=1, size=8, **kw):
    """Four levels so 28x28 exercises odd halving (28 -> 14 -> 7 -> 4) and the way back."""
    args = dict(base_channels=16, channel_mult=(1, 2, 2, 2), num_res_blocks=1,
                attention_resolutions=(16, 8), num_heads=2, groups=8)
    return UNet(channels, size, **(args | kw))


def perturb(net, seed=0):
    """Move every weight off its init, so zero-initialised layers stop masking the conditioning."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return net


def batch(channels, size, n=3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, channels, size, size, generator=g), torch.tensor([0, 17, 999][:n])


@pytest.mark.parametrize("size", [8, 16, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape_matches_input(size, channels):
    x, t = batch(channels, size)
    assert tiny(channels, size)(x, t).shape == x.shape
    cond = perturb(tiny(channels, size, num_classes=10))
    assert cond(x, t, torch.tensor([0, 9, 10])).shape == x.shape  # 10 is the null class
    assert cond(x, t).shape == x.shape


def test_out_channels_can_differ():
    x, t = batch(3, 8)
    assert tiny(3, 8, out_channels=6)(x, t).shape == (3, 6, 8, 8)


def test_initial_output_is_zero():
    net = tiny(3, 16, num_classes=10)
    assert all((p == 0).all() for p in net.out[-1].parameters())
    x, t = batch(3, 16)
    assert torch.equal(net(x, t, torch.tensor([1, 2, 10])), torch.zeros_like(x))


def test_time_and_labels_change_the_output():
    net = perturb(tiny(1, 8, num_classes=10)).eval()
    x = batch(1, 8, n=1)[0].expand(2, -1, -1, -1)
    out = net(x, torch.tensor([10, 500]), torch.tensor([3, 3]))
    assert not torch.allclose(out[0], out[1])
    out = net(x, torch.tensor([10, 10]), torch.tensor([3, 4]))
    assert not torch.allclose(out[0], out[1])


def test_missing_label_means_null_class():
    net = perturb(tiny(1, 8, num_classes=10)).eval()
    x, t = batch(1, 8)
    torch.testing.assert_close(net(x, t), net(x, t, torch.full_like(t, 10)))


def test_labels_for_unconditional_net_raise():
    x, t = batch(1, 8)
    with pytest.raises(ValueError, match="num_classes"):
        tiny(1, 8)(x, t, torch.zeros_like(t))


def test_accepts_hydra_lists():
    net = tiny(1, 8, channel_mult=OmegaConf.create([1, 2]), attention_resolutions=OmegaConf.create([8]))
    x, t = batch(1, 8)
    assert net(x, t).shape == x.shape


@pytest.mark.parametrize("kw, key", [
    (dict(groups=32), "model.groups=32"),
    (dict(num_heads=3), "model.num_heads=3"),
    (dict(base_channels=0), "model.base_channels=0"),
    (dict(channel_mult=(1, 2, 2, 2, 2)), "model.channel_mult"),
    (dict(channel_mult=()), "model.channel_mult"),
    (dict(attention_resolutions=(0,)), "model.attention_resolutions[0]=0"),
    (dict(dropout=1.0), "model.dropout"),
    (dict(num_classes=0), "model.num_classes=0"),
])
def test_bad_config_names_the_key(kw, key):
    with pytest.raises(ConfigError, match="allowed") as err:
        tiny(1, 8, **kw)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_gradients_reach_every_parameter():
    net = perturb(tiny(3, 28, num_classes=10, dropout=0.1))
    x, t = batch(3, 28)
    net(x, t, torch.tensor([0, 1, 10])).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_zero_init_still_trains():
    """The zeroed output conv gets a gradient at init, so training can leave the zero start."""
    net = tiny(1, 8)
    x, t = batch(1, 8)
    (net(x, t) - x).square().mean().backward()
    assert net.out[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("preset", ["unet", "unet_small"])
def test_presets_build(preset):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(overrides=[f"+model={preset}", "+data.channels=1", "+data.image_size=28",
                                 "+data.num_classes=10", "model.num_classes=${data.num_classes}"])
    net = instantiate(cfg.model)
    assert (net.in_channels, net.num_classes) == (1, 10)
    x, t = batch(1, 28, n=2)
    assert net(x, t).shape == x.shape
