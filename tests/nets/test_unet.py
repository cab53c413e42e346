"""UNet beyond the shared contract (test_contract.py): Hydra's list configs for its per-level settings."""

from omegaconf import OmegaConf

from tests.nets.test_contract import batch, unet


def test_accepts_hydra_lists():
    net = unet(1, 8, channel_mult=OmegaConf.create([1, 2]), attention_resolutions=OmegaConf.create([8]))
    x, t = batch(1, 8)
    assert net(x, t).shape == x.shape
