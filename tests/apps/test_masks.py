"""Masks: True = known pixel, False = to fill."""

import pytest
import torch
from torchvision.io import write_png

from difflab.apps.masks import CentreBox, FromFile, Half, Strokes
from difflab.errors import ConfigError


def test_centre_box_and_half():
    box = CentreBox(0.5)(3, 28)
    assert box.shape == (3, 1, 28, 28) and (~box).sum().item() == 3 * 14 * 14
    assert not box[0, 0, 14, 14] and box[0, 0, 0, 0]
    right = Half("right")(1, 8)
    assert right[..., :4].all() and not right[..., 4:].any()
    assert not Half("top")(1, 8)[..., :4, :].any()


def test_strokes_are_fixed_by_seed_and_differ_per_image():
    a, b = Strokes()(4, 28, seed=1), Strokes()(4, 28, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a, Strokes()(4, 28, seed=2))
    assert 0.02 < (~a).float().mean() < 0.8


def test_mask_file(tmp_path):
    hole = torch.zeros(1, 8, 8, dtype=torch.uint8)
    hole[:, 2:4, 2:6] = 255  # white = fill
    write_png(hole, str(tmp_path / "m.png"))
    known = FromFile(str(tmp_path / "m.png"))(2, 8)
    assert known.shape == (2, 1, 8, 8) and (~known).sum().item() == 2 * 8
    with pytest.raises(ConfigError, match="is 8x8 but the model makes 16x16 images"):
        FromFile(str(tmp_path / "m.png"))(1, 16)
    assert FromFile(str(tmp_path / "m.png"), resize=True)(1, 16).shape == (1, 1, 16, 16)
    with pytest.raises(ConfigError, match="does not exist"):
        FromFile(str(tmp_path / "nope.png"))(1, 8)


@pytest.mark.parametrize("make", [lambda: CentreBox(1.5), lambda: Half("middle"), lambda: Strokes(width=0)])
def test_bad_mask_values(make):
    with pytest.raises(ConfigError, match="invalid; allowed"):
        make()
