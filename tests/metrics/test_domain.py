"""FID-domain features: the shipped classifiers' test accuracy, FID/KID through torchmetrics, resizing,
load errors, and a short training run from the real config."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from difflab.build import instantiate
from difflab.data.fashion_mnist import DEBIAN_DIR
from difflab.errors import ConfigError
from difflab.metrics import DomainClassifier, DomainFeatures, load_domain_classifier, save_domain_classifier
from difflab.metrics.train_classifier import random_shift, train_classifier
from tests.conftest import CONF, run_cli, run_in_process

HAVE_FASHION = (Path(DEBIAN_DIR) / "t10k-images-idx3-ubyte.gz").is_file()
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason=f"Fashion-MNIST IDX files not in {DEBIAN_DIR}")


def compose_features(tmp_path, *overrides):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train_features", overrides=[f"paths.output_dir={tmp_path}", *overrides])


def load_test_split(tmp_path, data: str, *overrides):
    """The datamodule's test split of `data` as one tensor batch (x [N x C x H x W], y [N])."""
    dm = instantiate(compose_features(tmp_path, f"data={data}", "data.num_workers=0",
                                      "data.batch_size=1000", *overrides).data)
    dm.setup("test")
    x, y = zip(*dm.test_dataloader())
    return torch.cat(x), torch.cat(y)


@torch.no_grad()
def accuracy(classifier, x, y) -> float:
    return sum((classifier(a).argmax(1) == b).sum().item() for a, b in zip(x.split(1000), y.split(1000))) / len(y)


@pytest.mark.slow
@pytest.mark.parametrize("name,minimum", [("digits", 0.97), pytest.param("fashion_mnist", 0.90, marks=needs_fashion)])
def test_shipped_weights_classify_the_test_split(tmp_path, name, minimum):
    classifier = load_domain_classifier(name)
    x, y = load_test_split(tmp_path, name)
    if name == "fashion_mnist":
        assert len(y) == 10_000  # the official t10k set
    assert classifier.image_size == x.shape[-1] and classifier.saved_config["dataset"] == name
    acc = accuracy(classifier, x, y)
    print(f"{name}: test accuracy {acc:.4f} on {len(y)} images")
    assert acc >= minimum
    assert abs(acc - classifier.saved_config["test_accuracy"]) <= 2 / len(y)  # the recorded figure is this one


@pytest.mark.parametrize("name,size,minimum", [("digits", 16, 0.85),
                                               pytest.param("fashion_mnist", 32, 0.85, marks=needs_fashion)])
def test_other_image_sizes_are_resized(tmp_path, name, size, minimum):
    classifier = load_domain_classifier(name)
    x, y = load_test_split(tmp_path, name, f"data.image_size={size}")
    assert x.shape[-1] == size != classifier.image_size
    assert classifier.features(x[:4]).shape == (4, classifier.num_features)
    assert accuracy(classifier, x[:2000], y[:2000]) >= minimum
    # RGB (gray repeated) reads as the gray image it came from
    torch.testing.assert_close(classifier.features(x[:8].repeat(1, 3, 1, 1)), classifier.features(x[:8]))


def test_features_do_not_depend_on_the_batch_and_stay_in_eval():
    features = DomainFeatures(load_domain_classifier("digits"))
    x = torch.rand(32, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(features(x)[:5], features(x[:5]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(features(x), features(x), atol=0, rtol=0)
    features.train()
    assert not features.training and not features.classifier.training
    assert features(x).dtype == torch.float32 and features.num_features == 128


def test_fid_and_kid_with_domain_features(tmp_path):
    x, _ = load_test_split(tmp_path, "digits")
    noise = torch.rand_like(x) * 2 - 1
    fid = FrechetInceptionDistance(feature=DomainFeatures(load_domain_classifier("digits")))
    fid.train()  # as a Lightning module would; the features must stay in eval mode
    assert not fid.inception.training

    def fid_of(real, fake):
        fid.reset()
        fid.update(real, real=True)
        fid.update(fake, real=False)
        return fid.compute().item()

    same, halves, vs_noise = fid_of(x, x), fid_of(x[::2], x[1::2]), fid_of(x, noise)
    print(f"FID-domain digits: same set {same:.4f}, two halves {halves:.3f}, vs uniform noise {vs_noise:.1f}")
    assert abs(same) < 1e-2 * halves
    assert vs_noise > 10 * halves  # halves differ by sampling only: ~180 images each, 128 features

    kid = KernelInceptionDistance(feature=DomainFeatures(load_domain_classifier("digits")), subset_size=100)
    kid.update(x[::2], real=True)
    kid.update(x[1::2], real=False)
    kid_halves = kid.compute()[0].item()
    kid.reset()
    kid.update(x, real=True)
    kid.update(noise, real=False)
    kid_noise = kid.compute()[0].item()
    print(f"KID-domain digits: two halves {kid_halves:.4f}, vs uniform noise {kid_noise:.2f}")
    assert kid_noise > 10 * abs(kid_halves)  # the unbiased estimate may fall below 0 for equal distributions


def test_random_shift_translates_by_whole_pixels():
    x = torch.randn(64, 1, 8, 8)
    assert random_shift(x, 0) is x
    shifted = random_shift(x, 1, torch.Generator().manual_seed(0))
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    candidates = torch.stack([padded[..., 1 + dy:9 + dy, 1 + dx:9 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    matches = (candidates == shifted).flatten(2).all(-1)  # [9 x N]: which translation each image got
    assert (matches.sum(0) >= 1).all()
    assert matches.any(1).sum() >= 5  # many translations drawn, not one


class Payload:
    """An arbitrary object: unpickling it could run code, so a weights-only load must refuse it."""


def test_load_errors_name_the_key(tmp_path):
    def refused(arg, *words):
        with pytest.raises(ConfigError) as e:
            load_domain_classifier(arg)
        message = str(e.value)
        assert "\n" not in message and message.startswith(f"metrics.domain_weights={arg}")
        assert all(w in message for w in words), message

    refused("no_such_dataset", "digits", "fashion_mnist", "train_features")
    with pytest.raises(ConfigError, match="metrics.domain_weights is not set.*digits"):
        load_domain_classifier(None)
    refused(str(tmp_path / "missing.pt"), "does not exist")
    evil = tmp_path / "evil.pt"
    torch.save({"config": {}, "state_dict": {}, "payload": Payload()}, evil)
    refused(str(evil), "weights-only")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    refused(str(garbage), "not a readable")
    torch.save({"state_dict": {}}, tmp_path / "bare.pt")
    refused(str(tmp_path / "bare.pt"), "config")
    small = DomainClassifier(1, 8, 10, width=8)
    save_domain_classifier(small, tmp_path / "small.pt")
    saved = torch.load(tmp_path / "small.pt", weights_only=True)
    saved["config"]["width"] = 16
    torch.save(saved, tmp_path / "mismatch.pt")
    refused(str(tmp_path / "mismatch.pt"), "does not fit")
    whole = (tmp_path / "small.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    refused(str(tmp_path / "truncated.pt"), "not a readable")


def test_save_load_round_trip(tmp_path):
    classifier = DomainClassifier(1, 8, 10, width=16, num_features=32).eval()
    save_domain_classifier(classifier, tmp_path / "w.pt", dataset="digits", test_accuracy=0.5)
    loaded = load_domain_classifier(tmp_path / "w.pt")
    assert loaded.config == classifier.config and loaded.saved_config["test_accuracy"] == 0.5
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(loaded(x), classifier(x), atol=0, rtol=0)


def test_one_epoch_on_digits_writes_loadable_weights(tmp_path):
    cfg = compose_features(tmp_path, f"out={tmp_path / 'w' / 'digits.pt'}", "trainer.max_steps=-1",
                           "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu")
    result = train_classifier(cfg)
    loaded = load_domain_classifier(tmp_path / "w" / "digits.pt")
    assert loaded.config == {"in_channels": 1, "image_size": 8, "num_classes": 10, "width": 32, "num_features": 128}
    assert loaded.saved_config["dataset"] == "digits"
    assert loaded.saved_config["test_accuracy"] == result["test_accuracy"] > 0.1  # better than chance already


@pytest.mark.slow
def test_command_trains_and_rejects_unknown_data(tmp_path):
    proc = run_in_process("train_features", "trainer.max_steps=3", "trainer.enable_progress_bar=false",
                          "trainer.accelerator=cpu", f"out={tmp_path / 'w.pt'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert load_domain_classifier(tmp_path / "w.pt").saved_config["dataset"] == "digits"
    proc = run_cli("train_features", "data=nope")  # the command's real process
    assert proc.returncode == 2 and "data=nope is not a known option" in proc.stderr
