"""Export folders of difflab's own nets load back to the same samples (DiffusionModule.from_pretrained, ckpt=DIR);
init_weights=DIR takes an export or a diffusers UNet2DModel folder of the run's sizes; a folder is written whole or
not at all, and bad folders are refused in one line."""

import json

import numpy as np
import pytest
import torch

from difflab.build import build_module, load_init_weights, module_from_checkpoint
from difflab.errors import ConfigError
from difflab.module import DiffusionModule
from difflab.pretrained import CONFIG, atomic_folder
from difflab.train import train
from tests.conftest import TINY, compose_train, run_in_process

TINY_UNET = ["model=diffusers_unet", "model.block_out_channels=[16,32]", "model.layers_per_block=1"]


def export(ckpt, out, *args):
    return run_in_process("export", f"ckpt={ckpt}", f"out={out}", f"hydra.run.dir={out.parent / 'hydra'}", *args)


@pytest.fixture(scope="module", params=["unet_small", "dit_small"])
def trained(request, tmp_path_factory):
    """(model, checkpoint) of a 6-step run at a high learning rate: far enough from the zero start to sample."""
    out = tmp_path_factory.mktemp(request.param)
    train(compose_train(out, f"model={request.param}", "logger=none", "trainer.max_steps=6", "optimizer.lr=1e-2"))
    return request.param, out / "checkpoints" / "last.ckpt"


def test_export_round_trip_gives_identical_samples(trained, tmp_path):
    _, trained = trained
    done = export(trained, tmp_path / "exp")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == [CONFIG, "model.safetensors"]
    expected = module_from_checkpoint(trained, precision="32").sample(4, seed=3)
    assert expected.std() > 0  # the net has left its zero start
    assert torch.equal(DiffusionModule.from_pretrained(tmp_path / "exp", precision="32").sample(4, seed=3), expected)
    # ckpt=DIR in the sample command, as ckpt=PATH
    for ckpt, run in [(trained, "a"), (tmp_path / "exp", "b")]:
        done = run_in_process("sample", f"ckpt={ckpt}", "num_samples=4", "precision=32", "device=cpu",
                              f"hydra.run.dir={tmp_path / run}")
        assert done.returncode == 0, done.stderr
    a, b = (np.load(tmp_path / run / "samples.npz")["samples"] for run in "ab")
    np.testing.assert_array_equal(a, b)


def test_apply_and_evaluate_take_an_export(trained, tmp_path):
    """They read the data's config from the module (hparams.run_config["data"]), which the export's difflab.json holds."""
    _, trained = trained
    assert export(trained, tmp_path / "exp").returncode == 0
    done = run_in_process("apply", "task=denoise", f"ckpt={tmp_path / 'exp'}", "num_images=2",
                          f"hydra.run.dir={tmp_path / 'apply'}")
    assert done.returncode == 0, done.stderr[-2000:]
    done = run_in_process("evaluate", f"ckpt={tmp_path / 'exp'}", "metrics=[nll]", "metrics.nll.num_images=4",
                          "metrics.nll.timesteps=2", f"hydra.run.dir={tmp_path / 'evaluate'}")
    assert done.returncode == 0, done.stderr[-2000:]


def test_export_as_init_weights_starts_from_the_ema_weights(trained, tmp_path):
    model, trained = trained
    assert export(trained, tmp_path / "exp").returncode == 0
    module = build_module(compose_train(tmp_path, f"model={model}"), (1, 8, 8))
    assert load_init_weights(module, tmp_path / "exp") == 0
    ema = torch.load(trained, weights_only=True)["state_dict"]
    assert all(torch.equal(v, ema[k]) for k, v in module.state_dict().items())


def test_overwrite_replaces_an_export_only(trained, tmp_path):
    _, trained = trained
    out = tmp_path / "exp"
    assert export(trained, out).returncode == 0
    (out / "stale.txt").write_text("from an older export")
    refused = export(trained, out)
    assert refused.returncode == 2 and "exists and is not empty; allowed: a new or empty folder, or overwrite=true" \
        in refused.stderr
    assert export(trained, out, "overwrite=true").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [CONFIG, "model.safetensors"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("not an export")
    refused = export(trained, other, "overwrite=true")
    assert refused.returncode == 2 and "holds no difflab.json; overwrite=true replaces earlier exports only" \
        in refused.stderr
    assert [p.name for p in other.iterdir()] == ["keep.txt"]


def test_a_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "exp"
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_folder(out) as folder:
            (folder / CONFIG).write_text("{}")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        with atomic_folder(tmp_path / "file"):
            pass
    out.mkdir()  # an empty folder is taken
    with atomic_folder(out) as folder:
        (folder / CONFIG).write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp", "file"] and (out / CONFIG).is_file()


# ---- diffusers folders as init_weights ---------------------------------------------------------------------------
@pytest.fixture
def diffusers_module(tmp_path):
    pytest.importorskip("diffusers")
    return build_module(compose_train(tmp_path, *TINY_UNET), (1, 8, 8))


def saved_unet(module, folder, pipeline=False, **changes):
    """A random UNet2DModel of module.net's config (with `changes`), saved by diffusers itself."""
    import diffusers

    torch.manual_seed(1)
    unet = diffusers.UNet2DModel(**{**module.net.unet.config, **changes})
    if pipeline:
        diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler()).save_pretrained(folder)
    else:
        unet.save_pretrained(folder)
    return unet


@pytest.mark.parametrize("pipeline", [False, True], ids=["unet-folder", "pipeline-folder"])
def test_diffusers_unet_folder_as_init_weights(diffusers_module, tmp_path, pipeline):
    unet = saved_unet(diffusers_module, tmp_path / "hub", pipeline)
    assert load_init_weights(diffusers_module, tmp_path / "hub") == 0
    for k, v in unet.state_dict().items():
        assert torch.equal(diffusers_module.net.unet.state_dict()[k], v), k


def test_fine_tuning_a_diffusers_unet(diffusers_module, tmp_path):
    saved_unet(diffusers_module, tmp_path / "hub")
    metrics = train(compose_train(tmp_path / "run", *TINY_UNET, f"init_weights={tmp_path / 'hub'}", "logger=none"))
    assert np.isfinite(metrics["train/loss"])


@pytest.mark.parametrize("changes, message", [
    (dict(block_out_channels=(16, 64)), r"block_out_channels: \[16, 32\] here, \[16, 64\] in the folder"),
    (dict(sample_size=16, layers_per_block=2), "sample_size: 8 here, 16 in the folder; layers_per_block: 1 here"),
])
def test_a_folder_of_other_sizes_is_refused(diffusers_module, tmp_path, changes, message):
    saved_unet(diffusers_module, tmp_path / "hub", **changes)
    with pytest.raises(ConfigError, match=f"init_weights=.* does not match this run's model=diffusers_unet: {message}"):
        load_init_weights(diffusers_module, tmp_path / "hub")


def test_refused_in_one_line_before_training(tmp_path, diffusers_module, no_fit):
    saved_unet(diffusers_module, tmp_path / "hub", layers_per_block=2)
    done = run_in_process("train", *TINY, *TINY_UNET, "logger=none", f"init_weights={tmp_path / 'hub'}",
                          f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: init_weights=")
    assert "layers_per_block: 1 here, 2 in the folder" in done.stderr


def test_folders_that_are_no_unet_are_refused(diffusers_module, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="is not a diffusers UNet2DModel folder: it has no config.json; allowed: a "
                                          r"folder src/export.py wrote \(difflab.json\)"):
        load_init_weights(diffusers_module, empty)
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "config.json").write_text(json.dumps({"_class_name": "DDPMScheduler"}))
    with pytest.raises(ConfigError, match="has a config.json for 'DDPMScheduler'"):
        load_init_weights(diffusers_module, tmp_path / "scheduler")
    saved_unet(diffusers_module, tmp_path / "bin")
    (tmp_path / "bin" / "diffusion_pytorch_model.safetensors").rename(tmp_path / "bin" / "diffusion_pytorch_model.bin")
    with pytest.raises(ConfigError, match="has no diffusion_pytorch_model.safetensors"):
        load_init_weights(diffusers_module, tmp_path / "bin")
    saved_unet(diffusers_module, tmp_path / "hub")
    unet_run = build_module(compose_train(tmp_path), (1, 8, 8))
    with pytest.raises(ConfigError, match="holds a diffusers UNet2DModel; it fits model=diffusers_unet only"):
        load_init_weights(unet_run, tmp_path / "hub")
    with pytest.raises(ConfigError, match="is a folder without difflab.json, so not a difflab export"):
        module_from_checkpoint(tmp_path / "hub")
