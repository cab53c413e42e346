"""DiT: shapes, adaLN-Zero start, patch round trip, conditioning, validation, gradients, presets."""

from pathlib import Path

import pytest
import torch

from difflab.errors import ConfigError
from difflab.nets import DiT

CONF = Path(__file__).resolve().parents[2] / "conf"


def tiny(size=8, channels=1, **kw):
    return DiT(size, channels, **(dict(patch_size=2, hidden_size=32, depth=2, num_heads=2) | kw))


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


@pytest.mark.parametrize("size, patch", [(8, 2), (16, 4), (28, 2), (28, 4), (32, 2), (32, 4)])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape_matches_input(size, patch, channels):
    x, t = batch(channels, size)
    assert tiny(size, channels, patch_size=patch)(x, t).shape == x.shape
    cond = perturb(tiny(size, channels, patch_size=patch, num_classes=10))
    assert cond(x, t, torch.tensor([0, 9, 10])).shape == x.shape  # 10 is the null class
    assert cond(x, t).shape == x.shape


def test_adaln_zero_start():
    net = tiny(8, 3, num_classes=10)
    zeroed = [b.adaLN[-1] for b in net.blocks] + [net.final.adaLN[-1], net.final.linear]
    assert all((p == 0).all() for layer in zeroed for p in layer.parameters())
    x, t = batch(3, 8)
    assert torch.equal(net(x, t, torch.tensor([1, 2, 10])), torch.zeros_like(x))


def test_patch_round_trip_keeps_row_major_order():
    """Token k is the patch at row k // g, column k % g, and unpatchify puts it back there."""
    net, (n, c, s, p) = tiny(16, 3, patch_size=4), (2, 3, 16, 4)
    x, g = torch.randn(n, c, s, s), s // p
    tokens = net.patchify(x).flatten(2)  # [N x D x T], as in forward
    k, row, col = 6, 1, 2
    patch = x[:, :, row * p:(row + 1) * p, col * p:(col + 1) * p]
    torch.testing.assert_close(tokens[:, :, k], net.patchify(patch).flatten(1))
    pixels = x.reshape(n, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(n, g * g, p * p * c)
    assert torch.equal(net.unpatchify(pixels), x)


def test_positional_embedding_is_fixed_and_distinct():
    net = tiny(16, 1, patch_size=2)
    pos = net.pos_embed[0]
    assert pos.shape == (64, 32) and "pos_embed" not in dict(net.named_parameters())
    assert torch.cdist(pos, pos).add(torch.eye(64)).min() > 0  # every token position differs


def test_time_and_labels_change_the_output():
    net = perturb(tiny(8, 1, num_classes=10)).eval()
    x = batch(1, 8, n=1)[0].expand(2, -1, -1, -1)
    out = net(x, torch.tensor([10, 500]), torch.tensor([3, 3]))
    assert not torch.allclose(out[0], out[1])
    out = net(x, torch.tensor([10, 10]), torch.tensor([3, 4]))
    assert not torch.allclose(out[0], out[1])


def test_missing_label_means_null_class():
    net = perturb(tiny(8, 1, num_classes=10)).eval()
    x, t = batch(1, 8)
    torch.testing.assert_close(net(x, t), net(x, t, torch.full_like(t, 10)))


def test_labels_for_unconditional_net_raise():
    x, t = batch(1, 8)
    with pytest.raises(ValueError, match="num_classes"):
        tiny(8, 1)(x, t, torch.zeros_like(t))


def test_wrong_input_size_raises():
    x, t = batch(1, 16)
    with pytest.raises(ValueError, match="8x8"):
        tiny(8, 1)(x, t)


@pytest.mark.parametrize("kw, msg", [
    (dict(patch_size=3), "model.patch_size=3 does not divide data.image_size=8; allowed: 1, 2, 4, 8"),
    (dict(num_heads=5), "model.num_heads=5 does not divide model.hidden_size=32; allowed: 1, 2, 4, 8, 16, 32"),
    (dict(hidden_size=6, num_heads=2), "model.hidden_size=6"),
    (dict(depth=0), "model.depth=0"),
    (dict(num_classes=-1), "model.num_classes=-1"),
])
def test_bad_config_names_the_key(kw, msg):
    with pytest.raises(ConfigError) as err:
        tiny(8, 1, **kw)
    assert msg in str(err.value) and "allowed" in str(err.value) and "\n" not in str(err.value)


def test_gradients_reach_every_parameter():
    net = perturb(tiny(8, 3, num_classes=10))
    x, t = batch(3, 8)
    net(x, t, torch.tensor([0, 1, 10])).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_zero_init_still_trains():
    """At init only the final linear gets a gradient; one step is enough to open the rest."""
    net = tiny(8, 1)
    x, t = batch(1, 8)
    (net(x, t) - x).square().mean().backward()
    assert net.final.linear.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("preset", ["dit", "dit_small", "dit_b2"])
def test_presets_build(preset):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(overrides=[f"+model={preset}", "+data.channels=1", "+data.image_size=8",
                                 "+data.num_classes=10", "model.num_classes=${data.num_classes}"])
    net = instantiate(cfg.model)
    assert (net.in_channels, net.num_classes) == (1, 10)
    x, t = batch(1, 8, n=2)
    with torch.no_grad():
        assert net(x, t).shape == x.shape
