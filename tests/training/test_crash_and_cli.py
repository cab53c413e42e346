"""The product from the command line: train, sample, survive SIGKILL, run DDP on 2 CPU processes. The commands run
in this process (run_in_process) where a process of their own adds nothing to the check."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from difflab.build import module_from_checkpoint
from difflab.checkpoint import load_checkpoint
from tests.conftest import ROOT, TINY, run_cli, run_in_process


def test_sample_command_writes_grid_and_samples(tmp_path, trained_ckpt):
    args = [f"ckpt={trained_ckpt}", "num_samples=6", "sampler=ddim", "sampler.steps=4", "temperature=0.8", "seed=0"]
    proc = run_in_process("sample", *args, f"hydra.run.dir={tmp_path / 'a'}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "grid.png").is_file()
    data = np.load(tmp_path / "a" / "samples.npz")
    assert data["images"].shape == (6, 8, 8, 1) and data["images"].dtype == np.uint8
    assert data["samples"].shape == (6, 1, 8, 8)
    # Sample i depends only on (seed, i): a smaller batch size gives the same images.
    proc = run_in_process("sample", *args, "batch_size=4", f"hydra.run.dir={tmp_path / 'b'}")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(np.load(tmp_path / "b" / "samples.npz")["samples"], data["samples"], atol=1e-5)


@pytest.mark.slow
def test_sample_command_compiled_draws_the_eager_images(tmp_path, trained_ckpt):
    args = [f"ckpt={trained_ckpt}", "num_samples=5", "batch_size=2", "sampler=ddim", "sampler.steps=3", "seed=0",
            "precision=32"]
    eager = run_in_process("sample", *args, f"hydra.run.dir={tmp_path / 'eager'}")
    compiled = run_in_process("sample", *args, "compile=true", f"hydra.run.dir={tmp_path / 'compiled'}")
    assert eager.returncode == 0 and compiled.returncode == 0, compiled.stderr
    a, b = (np.load(tmp_path / name / "samples.npz")["samples"] for name in ("eager", "compiled"))
    assert b.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(b, a, atol=1e-4)


@pytest.mark.slow
def test_sigkill_at_a_random_moment_leaves_a_resumable_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = [*TINY, "trainer.max_steps=100000", "callbacks.checkpoint.every_n_train_steps=1", "logger=none",
            "model.base_channels=32", f"hydra.run.dir={run}"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "src" / "train.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.ckpt"
    try:
        deadline = time.time() + 120
        while not last.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert last.exists(), "training never wrote a checkpoint"
        time.sleep(random.uniform(0.2, 2.0))  # checkpoints are being written every step: kill mid-stream
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    ckpt = load_checkpoint(last)
    assert ckpt["global_step"] >= 1
    resumed = run_in_process("train", *TINY, f"trainer.max_steps={ckpt['global_step'] + 2}", f"ckpt_path={last}",
                             "logger=none", "model.base_channels=32", f"hydra.run.dir={tmp_path / 'resumed'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["global_step"] == ckpt["global_step"] + 2


def test_default_style_run_from_cli_leaves_its_artefacts(tmp_path):
    proc = run_in_process("train", *TINY, "trainer.max_steps=4", "final_samples=4", "trainer.log_every_n_steps=1",
                          "callbacks.loss_curve.every_n_steps=2", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ["checkpoints/last.ckpt", "samples.png", "loss.png", "loss.csv", "csv/metrics.csv", "config.yaml",
                 ".hydra/config.yaml"]:
        assert (tmp_path / name).is_file(), name


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    proc = run_cli("train", *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                   "trainer.max_steps=3", "final_samples=4", f"hydra.run.dir={tmp_path}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 3
    assert (tmp_path / "samples.png").is_file()
    module = module_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert torch.isfinite(module.sample(2, seed=0)).all()
