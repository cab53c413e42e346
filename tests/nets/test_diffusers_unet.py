"""The diffusers UNet2DModel adapter: it is UNet2DModel itself, its bad settings are one-line errors, and without the
diffusers extra it says how to install it."""

import sys

import pytest
import torch

from difflab.errors import ConfigError
from tests.nets.test_contract import diffusers_unet, perturb

pytest.importorskip("diffusers")


def test_output_is_unet2dmodels_own():
    net = perturb(diffusers_unet(1, 8, num_classes=3)).eval()
    x, t, y = torch.randn(2, 1, 8, 8), torch.tensor([3, 700]), torch.tensor([0, 2])
    with torch.no_grad():
        torch.testing.assert_close(net(x, t, y), net.unet(x, t, class_labels=y).sample, rtol=0, atol=0)
        torch.testing.assert_close(net(x, t), net.unet(x, t, class_labels=torch.tensor([3, 3])).sample, rtol=0, atol=0)
    assert net.unet.class_embedding.num_embeddings == 4  # the null class is row 3


@pytest.mark.parametrize("kw, match", [
    (dict(block_out_chanels=(16, 32)), "model.block_out_chanels is not a UNet2DModel setting; allowed: .*"
                                       "block_out_channels"),
    (dict(sample_size=16), "model.sample_size is not a UNet2DModel setting"),
    (dict(num_class_embeds=11), "model.num_class_embeds is not"),
    (dict(up_block_types=("UpBlock2D",)), "model=diffusers_unet: Must provide the same number"),
    (dict(norm_num_groups=5), "model=diffusers_unet: "),
])
def test_bad_settings_are_one_line_errors(kw, match):
    with pytest.raises(ConfigError, match=match) as e:
        diffusers_unet(1, 8, **kw)
    assert "\n" not in str(e.value)


def test_image_size_must_halve_at_every_level():
    with pytest.raises(ConfigError, match=r"data.image_size=10 is not a multiple of 2\^2"):
        diffusers_unet(1, 10)  # 10 -> 5 -> 3 on the way down, 3 -> 6 -> 12 on the way up
    x = torch.randn(1, 1, 12, 12)
    assert diffusers_unet(1, 12)(x, torch.tensor([1])).shape == x.shape


def test_differences_name_the_keys():
    net = diffusers_unet(1, 8)
    other = diffusers_unet(3, 16, layers_per_block=2).unet.config
    assert sorted(d.split(":")[0] for d in net.differences(other)) == \
        ["in_channels", "layers_per_block", "out_channels", "sample_size"]
    assert net.differences(net.unet.config) == []
    assert net.differences({**net.unet.config, "a_key_of_a_newer_diffusers": 1}) == []


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers now raises ImportError
    with pytest.raises(ConfigError, match=r"^model=diffusers_unet needs the diffusers extra: "
                                          r"pip install 'difflab\[diffusers\]'$"):
        diffusers_unet(1, 8)
