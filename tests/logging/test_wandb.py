"""W&B logging, offline: a tiny training's run holds every dashboard key, its images and the composed config; sweep
jobs are grouped and named; trajectory strips are laid out as documented. (Online or offline: test_wandb_mode.py.)"""

import json
import struct
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from difflab.callbacks import trajectory_strip
from difflab.callbacks.images import save_grid
from difflab.loggers import _hydra_group_and_name
from difflab.train import train
from tests.conftest import compose_train


def read_offline_run(run_dir: Path, timeout: float = 10.0) -> tuple[list[dict], dict]:
    """(history rows, config) of a finished offline run, from its transaction log run-<id>.wandb.

    wandb 0.31 writes no wandb-summary.json or config.yaml for offline runs and has no Python reader of the log:
    it is a LevelDB-style log (":W&B" header, 32 KiB blocks of records split into FULL/FIRST/MIDDLE/LAST chunks)
    of wandb_internal_pb2.Record protobufs, which `wandb sync` uploads. wandb-core may still be writing it for a
    moment after wandb.finish() returns: read until the run's exit record is there.
    """
    deadline = time.monotonic() + timeout
    while True:
        records = list(_records(next(run_dir.glob("run-*.wandb")).read_bytes()))
        if any(r.HasField("exit") for r in records) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    history, config = [], {}
    for r in records:
        if r.HasField("history"):
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item})
        elif r.HasField("config"):
            config.update({i.key: json.loads(i.value_json) for i in r.config.update})
    return history, config


def _records(data: bytes):
    from wandb.proto import wandb_internal_pb2

    assert data[:4] == b":W&B"
    block, header = 32768, 7
    pos, chunk = header, b""
    while pos + header <= len(data):
        _, length, kind = struct.unpack("<IHB", data[pos : pos + header])
        if block - pos % block < header or kind == 0:  # padding up to the end of the block
            pos += block - pos % block
            continue
        if pos + header + length > len(data):  # still being written
            return
        chunk += data[pos + header : pos + header + length]
        pos += header + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


@pytest.mark.slow
def test_training_logs_every_dashboard_key_to_an_offline_run(tmp_path, offline_wandb, capsys):
    cfg = compose_train(
        tmp_path, "logger=wandb", "data.batch_size=256", "trainer.max_steps=6", "trainer.log_every_n_steps=2",
        "callbacks.evaluation.every_n_epochs=1", "callbacks.evaluation.num_samples=16", "sampler.steps=3",
        "callbacks.sample_grid.every_n_steps=3", "callbacks.sample_grid.num_samples=4",
        "callbacks.trajectory.every_n_steps=3", "callbacks.throughput.window_size=2",
    )
    train(cfg)
    assert "wandb: offline (WANDB_MODE=offline; `wandb sync " in capsys.readouterr().out
    import wandb

    assert wandb.run is None  # finished by train
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    history, config = read_offline_run(run_dir)
    keys = set().union(*history)
    assert {"train/loss", "train/grad_norm", "lr-AdamW", "eval/fid", "train/device/samples_per_sec"} <= keys
    assert any(k.startswith("train_t/loss_t") for k in keys)
    assert all(row["trainer/global_step"] <= 6 for row in history)

    # Images: sample grids and trajectory strips at steps 3 and 6, in the run's media and as PNGs of the run
    media = run_dir / "files" / "media" / "images"
    assert len(list(media.glob("samples_*.png"))) == 2 and len(list(media.glob("trajectory_*.png"))) == 2
    assert sorted(p.name for p in (tmp_path / "trajectories").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    (strip_row,) = [r for r in history if r.get("trajectory/_type") and r["trainer/global_step"] == 3]
    # 4 samples x (x_t, x0_hat) rows of 8x8 images enlarged 6x, one column per step of the 3-step sampler
    assert (strip_row["trajectory/height"], strip_row["trajectory/width"]) == (8 * 50 + 2, 3 * 50 + 2)

    # The composed config at the top level, not only nested under the module's run_config
    assert config["model"]["_target_"] == "difflab.nets.unet.UNet"
    assert config["schedule"]["timesteps"] == 100 and config["data"]["batch_size"] == 256
    assert "run_config" not in config


def test_sweep_jobs_are_grouped_by_sweep_folder_and_named_by_overrides(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from tests.conftest import CONF

    assert _hydra_group_and_name() == (None, None)  # no Hydra app: W&B picks the name, no group
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["model=dit"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = "MULTIRUN"
        cfg.hydra.sweep.dir = str(tmp_path / "2026-01-01_12-00-00_train")
        cfg.hydra.job.override_dirname = "model=dit"
    HydraConfig.instance().set_config(cfg)
    try:
        assert _hydra_group_and_name() == ("2026-01-01_12-00-00_train", "model=dit")
    finally:
        HydraConfig.instance().cfg = None


def test_trajectory_strip_puts_each_sample_x_t_above_its_x0_hat_along_the_steps(tmp_path):
    steps, n = 5, 3
    # pixel value encodes (step, sample, which): 100 s + 10 k + (0 for x_t, 1 for x0_hat)
    code = torch.arange(steps)[:, None] * 100 + torch.arange(n)[None, :] * 10
    x_t = code[..., None, None, None].float().expand(steps, n, 1, 4, 4)
    strip = trajectory_strip(x_t, x_t + 1)
    assert strip.shape == (2 * n * steps, 1, 4, 4)
    grid_codes = strip[:, 0, 0, 0].reshape(2 * n, steps)  # rows x columns as make_grid lays them out (nrow=steps)
    expected = torch.stack([code.T, code.T + 1], dim=1).reshape(2 * n, steps).float()
    assert torch.equal(grid_codes, expected)

    grid = save_grid(torch.zeros(2 * n * steps, 1, 8, 8), tmp_path / "strip.png", nrow=steps)
    size = 8 * 6 + 2  # 8x8 images are enlarged 6x (to >= 48 px), 2 px padding
    assert grid.shape[-2:] == (2 * n * size + 2, steps * size + 2)
    assert Image.open(tmp_path / "strip.png").size == (steps * size + 2, 2 * n * size + 2)
