"""Anomaly scores separate data the model knows from data it does not (exact Gaussian-data model)."""

import pytest
import torch

from difflab.apps.anomaly import Anomaly
from difflab.apps.result import Observation
from difflab.errors import ConfigError
from tests.apps.conftest import M, S, gaussian_module


def test_scores_rank_out_of_distribution_images_higher(tmp_path):
    module = gaussian_module(size=8)
    module.hparams.run_config = {"data": {"classes": [0], "num_classes": 2}}
    g = torch.Generator().manual_seed(0)
    normal = M + S * torch.randn(32, 1, 8, 8, generator=g)
    odd = (M + 0.6 + 2 * S * torch.randn(32, 1, 8, 8, generator=g)).clamp(-1, 1)
    x, labels = torch.cat([normal, odd]), torch.tensor([0] * 32 + [1] * 32)
    task = Anomaly(noise_level=0.3, steps=10, bpd_timesteps=4)
    result = task(module, Observation(x=x, reference=x, labels=labels))
    assert result.columns["score_map"].shape == (64, 1, 8, 8)
    metrics = task.summarize(module, result, labels, tmp_path)
    assert metrics["normal_classes"] == [0] and metrics["num_anomalous"] == 32
    assert metrics["auroc_reconstruction"] > 0.95
    assert metrics["auroc_bits_per_dim"] > 0.95
    assert (tmp_path / "anomaly.png").is_file()


def test_without_labels_no_auroc(tmp_path):
    module = gaussian_module(size=8)
    module.hparams.run_config = {"data": {"classes": None, "num_classes": None}}
    x = torch.zeros(2, 1, 8, 8)
    result = Anomaly(bpd_timesteps=0)(module, Observation(x=x))
    assert set(result.scores) == {"score_reconstruction"}
    assert Anomaly().summarize(module, result, None, tmp_path) == {}


@pytest.mark.parametrize("key, value", [("noise_level", 0), ("noise_level", 1.5), ("steps", 0), ("repeats", 0),
                                        ("bpd_timesteps", -1)])
def test_bad_values(key, value):
    with pytest.raises(ConfigError, match=f"task.{key}={value} is invalid; allowed"):
        Anomaly(**{key: value})
