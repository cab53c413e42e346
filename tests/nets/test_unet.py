"""UNet beyond the shared contract (test_contract.py): other output channels, Hydra lists, config validation."""

import pytest
from omegaconf import OmegaConf

from difflab.errors import ConfigError
from tests.nets.test_contract import batch
from tests.nets.test_contract import unet as tiny


def test_out_channels_can_differ():
    x, t = batch(3, 8)
    assert tiny(3, 8, out_channels=6)(x, t).shape == (3, 6, 8, 8)


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
