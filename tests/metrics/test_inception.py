"""The Inception feature path, on a weights file the test writes itself (random weights of the right shapes)."""

import pytest
import torch

from difflab.errors import ConfigError
from difflab.metrics.features import InceptionFeatures


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    import torch_fidelity.feature_extractor_inceptionv3 as fe
    from torchmetrics.image.fid import NoTrainInceptionV3

    mp = pytest.MonkeyPatch()
    mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: None)  # build the network without any weights
    mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
    try:
        state = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"]).state_dict()
    finally:
        mp.undo()
    path = tmp_path_factory.mktemp("inception") / "weights.pth"
    torch.save(state, path)
    return path, state


def test_loads_weights_from_path_and_extracts_2048_features(random_inception_weights):
    path, state = random_inception_weights
    features = InceptionFeatures(weights=str(path))
    for key, value in features.net.state_dict().items():
        torch.testing.assert_close(value, state[key])
    gray = torch.rand(3, 1, 28, 28) * 2 - 1  # grayscale is repeated to RGB, torchmetrics resizes to 299
    out = features(gray)
    assert out.shape == (3, 2048) and torch.isfinite(out).all()


@pytest.mark.slow
def test_fid_with_inception_features(random_inception_weights):
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=InceptionFeatures(weights=str(random_inception_weights[0])))
    g = torch.Generator().manual_seed(0)
    real = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1
    fid.update(real, real=True)
    fid.update(real, real=False)
    assert float(fid.compute()) == pytest.approx(0.0, abs=1e-2)


def test_missing_or_unsafe_weights_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="metrics.inception_weights=.*does not exist"):
        InceptionFeatures(weights=str(tmp_path / "nope.pth"))

    class RunsCode:
        def __reduce__(self):
            return (print, ("ran",))

    evil = tmp_path / "evil.pth"
    torch.save({"x": RunsCode()}, evil)
    with pytest.raises(ConfigError, match="not a weights-only file"):
        InceptionFeatures(weights=str(evil))
