"""What every network promises (net(x, t, y=None) -> tensor shaped like x), checked on UNet, DiT and diffusers'
UNet2DModel alike: shapes, a zero start that still trains, conditioning on t and y, the null class, gradients, bad
settings refused in one line, and the presets."""

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from difflab.errors import ConfigError
from difflab.nets import DiffusersUNet, DiT, UNet

CONF = Path(__file__).resolve().parents[2] / "conf"


def unet(channels=1, size=8, **kw):
    """Four levels so 28x28 exercises odd halving (28 -> 14 -> 7 -> 4) and the way back."""
    args = dict(base_channels=16, channel_mult=(1, 2, 2, 2), num_res_blocks=1,
                attention_resolutions=(16, 8), num_heads=2, groups=8)
    return UNet(channels, size, **(args | kw))


def dit(channels=1, size=8, **kw):
    return DiT(image_size=size, in_channels=channels, **(dict(patch_size=2, hidden_size=32, depth=2, num_heads=2) | kw))


def diffusers_unet(channels=1, size=8, **kw):
    """Three levels, attention at the two coarser ones (8x8 data: 4x4 and 2x2)."""
    args = dict(block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8, attention_head_dim=8,
                down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"))
    return DiffusersUNet(channels, size, **(args | kw))


@dataclass(frozen=True)
class Net:
    make: Callable  # make(channels, size, **kw): a tiny net of this kind
    zeroed: Callable  # the layers that start at zero
    output_layer: Callable  # the one layer that gets a gradient at init
    grad_case: tuple  # (channels, size, kwargs) for the gradient check
    preset_size: int  # the image size its conf/model presets are built at

    def __repr__(self):
        return self.make.__name__


NETS = {
    "unet": Net(unet, lambda n: [n.out[-1]], lambda n: n.out[-1].weight, (3, 28, dict(dropout=0.1)), 28),
    "dit": Net(dit, lambda n: [b.adaLN[-1] for b in n.blocks] + [n.final.adaLN[-1], n.final.linear],
               lambda n: n.final.linear.weight, (3, 8, {}), 8),
    "diffusers_unet": Net(diffusers_unet, lambda n: [n.unet.conv_out], lambda n: n.unet.conv_out.weight,
                          (3, 8, dict(dropout=0.1)), 8),
}
# diffusers is an optional extra: without it, its net's cases are skipped, not failed
needs_diffusers = pytest.mark.skipif(importlib.util.find_spec("diffusers") is None, reason="no diffusers extra")


def case(name, *values, id=None):
    return pytest.param(*values, id=id, marks=[needs_diffusers] if name.startswith("diffusers") else [])


each_net = pytest.mark.parametrize("spec", [case(name, spec, id=name) for name, spec in NETS.items()])
SHAPES = [("unet", s, {}) for s in (8, 16, 28, 32)] + \
    [("dit", s, {"patch_size": p}) for s, p in [(8, 2), (16, 4), (28, 2), (28, 4), (32, 2), (32, 4)]] + \
    [("diffusers_unet", s, {}) for s in (8, 16, 32)]
# (net, settings for make(1, 8, ...), what the error must say): each a ConfigError naming the key
BAD_SETTINGS = [
    ("dit", dict(patch_size=3), "model.patch_size=3 does not divide data.image_size=8; allowed: 1, 2, 4, 8"),
    ("dit", dict(num_heads=5), "model.num_heads=5 does not divide model.hidden_size=32; allowed: 1, 2, 4, 8, 16, 32"),
    ("dit", dict(hidden_size=6, num_heads=2), "model.hidden_size=6"),
    ("dit", dict(depth=0), "model.depth=0"),
    ("dit", dict(mlp_ratio=0), "model.mlp_ratio=0"),
    ("unet", dict(groups=32), "model.groups=32"),
    ("unet", dict(num_heads=3), "model.num_heads=3"),
    ("unet", dict(base_channels=0), "model.base_channels=0"),
    ("unet", dict(channel_mult=(1, 2, 2, 2, 2)), "model.channel_mult"),  # 5 levels cannot halve 8 pixels 4 times
    ("unet", dict(channel_mult=()), "model.channel_mult"),
    ("unet", dict(attention_resolutions=(0,)), "model.attention_resolutions[0]=0"),
    ("unet", dict(dropout=1.0), "model.dropout"),
] + [(name, dict(num_classes=n), f"model.num_classes={n!r} is invalid") for name in NETS for n in (0, -1, True)]
PRESETS = [("unet", "unet"), ("unet", "unet_small"), ("dit", "dit"), ("dit", "dit_small"), ("dit", "dit_b2"),
           ("diffusers_unet", "diffusers_unet")]


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


@pytest.mark.parametrize("name, size, kw", [case(n, n, s, kw, id=f"{n}-{s}-{kw}") for n, s, kw in SHAPES])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape_matches_input(name, size, kw, channels):
    make = NETS[name].make
    x, t = batch(channels, size)
    assert make(channels, size, **kw)(x, t).shape == x.shape
    cond = perturb(make(channels, size, num_classes=10, **kw))
    assert cond(x, t, torch.tensor([0, 9, 10])).shape == x.shape  # 10 is the null class
    assert cond(x, t).shape == x.shape


@each_net
def test_initial_output_is_zero(spec):
    net = spec.make(3, 16, num_classes=10)
    assert all((p == 0).all() for layer in spec.zeroed(net) for p in layer.parameters())
    x, t = batch(3, 16)
    assert torch.equal(net(x, t, torch.tensor([1, 2, 10])), torch.zeros_like(x))


@each_net
def test_time_and_labels_change_the_output(spec):
    net = perturb(spec.make(1, 8, num_classes=10)).eval()
    x = batch(1, 8, n=1)[0].expand(2, -1, -1, -1)
    out = net(x, torch.tensor([10, 500]), torch.tensor([3, 3]))
    assert not torch.allclose(out[0], out[1])
    out = net(x, torch.tensor([10, 10]), torch.tensor([3, 4]))
    assert not torch.allclose(out[0], out[1])


@each_net
def test_missing_label_means_null_class(spec):
    net = perturb(spec.make(1, 8, num_classes=10)).eval()
    x, t = batch(1, 8)
    torch.testing.assert_close(net(x, t), net(x, t, torch.full_like(t, 10)))


@each_net
def test_labels_for_unconditional_net_raise(spec):
    x, t = batch(1, 8)
    with pytest.raises(ValueError, match="num_classes"):
        spec.make(1, 8)(x, t, torch.zeros_like(t))


@each_net
def test_gradients_reach_every_parameter(spec):
    channels, size, kw = spec.grad_case
    net = perturb(spec.make(channels, size, num_classes=10, **kw))
    x, t = batch(channels, size)
    net(x, t, torch.tensor([0, 1, 10])).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@each_net
def test_zero_init_still_trains(spec):
    """The zeroed output layer gets a gradient at init, so training can leave the zero start."""
    net = spec.make(1, 8)
    x, t = batch(1, 8)
    (net(x, t) - x).square().mean().backward()
    assert spec.output_layer(net).grad.abs().sum() > 0


@pytest.mark.parametrize("name, kw, msg", [case(n, n, kw, msg, id=f"{n}-{kw}") for n, kw, msg in BAD_SETTINGS])
def test_bad_settings_are_one_line_errors_naming_the_key(name, kw, msg):
    with pytest.raises(ConfigError) as err:
        NETS[name].make(1, 8, **kw)
    assert msg in str(err.value) and "allowed" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", [case(n, n, id=n) for n in ("unet", "diffusers_unet")])
def test_out_channels_set_the_output_channels(name):
    """For the nets that take out_channels (a learned variance would need 2 x in_channels)."""
    x, t = batch(3, 8)
    assert NETS[name].make(3, 8, out_channels=6)(x, t).shape == (3, 6, 8, 8)


@pytest.mark.parametrize("name, preset", [case(n, n, p, id=p) for n, p in PRESETS])
def test_presets_build(name, preset):
    size = NETS[name].preset_size
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(overrides=[f"+model={preset}", "+data.channels=1", f"+data.image_size={size}",
                                 "+data.num_classes=10", "model.num_classes=${data.num_classes}"])
    net = instantiate(cfg.model)
    assert (net.in_channels, net.num_classes) == (1, 10)
    x, t = batch(1, size, n=2)
    with torch.no_grad():
        assert net(x, t).shape == x.shape
