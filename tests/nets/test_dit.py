"""DiT beyond the shared contract (test_contract.py): patch round trip, positional embedding, the one image size it is
built for, and checkpoints saved when its argument was called input_size."""

import copy

import pytest
import torch

from difflab import legacy
from difflab.build import build_module, module_from_checkpoint
from difflab.nets import DiT
from tests.conftest import compose_train
from tests.nets.test_contract import batch, dit


def test_patch_round_trip_keeps_row_major_order():
    """Token k is the patch at row k // g, column k % g, and unpatchify puts it back there."""
    net, (n, c, s, p) = dit(3, 16, patch_size=4), (2, 3, 16, 4)
    x, g = torch.randn(n, c, s, s), s // p
    tokens = net.patchify(x).flatten(2)  # [N x D x T], as in forward
    k, row, col = 6, 1, 2
    patch = x[:, :, row * p:(row + 1) * p, col * p:(col + 1) * p]
    torch.testing.assert_close(tokens[:, :, k], net.patchify(patch).flatten(1))
    pixels = x.reshape(n, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(n, g * g, p * p * c)
    assert torch.equal(net.unpatchify(pixels), x)


def test_positional_embedding_is_fixed_and_distinct():
    net = dit(1, 16, patch_size=2)
    pos = net.pos_embed[0]
    assert pos.shape == (64, 32) and "pos_embed" not in dict(net.named_parameters())
    assert torch.cdist(pos, pos).add(torch.eye(64)).min() > 0  # every token position differs


def test_other_image_size_raises():
    x, t = batch(1, 16)
    with pytest.raises(ValueError, match="8x8"):
        dit(1, 8)(x, t)


def test_checkpoint_saved_with_input_size_rebuilds(tmp_path, monkeypatch):
    """A run config saved as model.input_size (the argument's old name) loads, through difflab.legacy, as image_size."""
    module = build_module(compose_train(tmp_path, "model=dit_small", "logger=none"), (1, 8, 8))
    hparams = copy.deepcopy(dict(module.hparams))
    hparams["run_config"]["model"]["input_size"] = hparams["run_config"]["model"].pop("image_size")
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams}, tmp_path / "old.ckpt")
    loaded = module_from_checkpoint(tmp_path / "old.ckpt", precision="32")
    assert isinstance(loaded.net, DiT) and loaded.net.image_size == 8
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in loaded.state_dict().items())
    monkeypatch.setattr(legacy, "RENAMED", {})  # the table, not anything else, is what made it load
    with pytest.raises(Exception, match="input_size"):
        module_from_checkpoint(tmp_path / "old.ckpt", precision="32")
