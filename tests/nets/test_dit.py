"""DiT beyond the shared contract (test_contract.py): patch round trip, positional embedding, input size, config
validation."""

import pytest
import torch

from difflab.errors import ConfigError
from tests.nets.test_contract import batch
from tests.nets.test_contract import dit


def tiny(size=8, channels=1, **kw):
    return dit(channels, size, **kw)


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
