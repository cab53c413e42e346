"""Shared fixtures: compose the real config (conf/) with tiny CPU overrides, and run the entry points."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"

# A run small enough for a few CPU seconds: tiny nets, few steps, no periodic sampling.
TINY = [
    "model=unet_small",
    "trainer=cpu",
    "trainer.max_steps=3",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.check_val_every_n_epoch=1000",
    "data.batch_size=16",
    "schedule.timesteps=100",
    "sampler.steps=5",
    "callbacks.sample_grid.every_n_steps=0",
    "callbacks.trajectory.every_n_steps=0",
    "callbacks.loss_curve.every_n_steps=0",
    "callbacks.evaluation.every_n_epochs=0",
    "~callbacks.progress_bar",
    "final_samples=0",
]


def compose_train(tmp_path, *overrides, tiny=True):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=[*(TINY if tiny else []), f"paths.output_dir={tmp_path}", *overrides])


def run_cli(script: str, *args, timeout=300, cwd=None) -> subprocess.CompletedProcess:
    """Run src/<script>.py as a user would; returns the finished process (stdout, stderr, returncode)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / f"{script}.py"), *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT, env=env,
    )


@pytest.fixture
def compose_tiny(tmp_path):
    return lambda *overrides: compose_train(tmp_path, *overrides)


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory):
    """A checkpoint from a 3-step tiny run, shared by tests that only need a valid file."""
    from difflab.train import train

    out = tmp_path_factory.mktemp("trained")
    train(compose_train(out, "logger=none"))
    return out / "checkpoints" / "last.ckpt"
