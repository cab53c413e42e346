"""Shared fixtures: compose the real config (conf/) with tiny CPU overrides, and run the entry points."""

import contextlib
import io
import logging
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

# One thread, here and (through the environment) in every process a test starts: the tests' tensors are tiny, and on
# a 2-core machine with anything else running, torch's two OpenMP threads wait on each other at every op (a tiny
# UNet's forward pass took 2 s instead of 20 ms). OMP_NUM_THREADS set by the caller wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

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


def compose_train(tmp_path, *overrides, tiny=True, tiny_schedule=True):
    """The train config with TINY (tiny_schedule=False: without schedule.timesteps, which continuous-time
    processes do not have) and `overrides`."""
    tiny = [o for o in TINY if tiny_schedule or not o.startswith("schedule.")] if tiny else []
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=[*tiny, f"paths.output_dir={tmp_path}", *overrides])


def run_cli(script: str, *args, timeout=300, cwd=None) -> subprocess.CompletedProcess:
    """Run src/<script>.py as a user would; returns the finished process (stdout, stderr, returncode)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / f"{script}.py"), *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT, env=env,
    )


def run_in_process(script: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """Run src/<script>.py (or the script at a path like bench/x.py) in this process, as `python SCRIPT ARGS` would:
    its argv, Hydra's main, its one-line errors and exit status, its folder first on sys.path; but without starting
    an interpreter and importing torch again (seconds per run). Returns what run_cli returns.

    What only a new process shows (the exit status the shell sees, stderr at the file-descriptor level, so also
    what loggers and warnings print) is left to one run_cli test per entry point. An exception that the script
    lets out is raised here, failing the test as its traceback would."""
    from hydra.core.hydra_config import HydraConfig

    path = ROOT / script if script.endswith(".py") else ROOT / "src" / f"{script}.py"
    argv, saved_env = [str(path), *args], dict(os.environ)
    saved_argv, saved_path, saved_cwd, saved_hydra = sys.argv, sys.path[:], os.getcwd(), HydraConfig.instance().cfg
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    out, err, code = io.StringIO(), io.StringIO(), 0
    os.environ.update(HYDRA_FULL_ERROR="0", WANDB_MODE="offline")
    sys.argv = argv
    sys.path.insert(0, str(path.parent))
    os.chdir(cwd or ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as stop:  # sys.exit(message) prints the message and exits with status 1
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if isinstance(stop.code, str):
            err.write(stop.code + "\n")
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        os.chdir(saved_cwd)
        HydraConfig.instance().cfg = saved_hydra  # the run's Hydra config must not leak into later tests
        for handler in root.handlers:  # Hydra's job logging: a console handler on `out` and the run's log file
            if handler not in saved_handlers:
                handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        os.environ.clear()  # what the run set (Lightning's PL_* variables, ...) goes with it
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


@pytest.fixture
def no_fit(monkeypatch):
    """Bad input must be refused before training starts: Trainer.fit fails the test if it is reached."""
    import lightning

    monkeypatch.setattr(lightning.Trainer, "fit", lambda *a, **k: pytest.fail("training started"))


@pytest.fixture
def compose_tiny(tmp_path):
    return lambda *overrides: compose_train(tmp_path, *overrides)


@pytest.fixture(scope="session")
def flow_ckpt(tmp_path_factory):
    """A checkpoint from a 3-step tiny run of schedule=rectified_flow (objective flow)."""
    from difflab.train import train

    out = tmp_path_factory.mktemp("trained_flow")
    train(compose_train(out, "logger=none", "schedule=rectified_flow", tiny_schedule=False))
    return out / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory):
    """A checkpoint from a 3-step tiny run, shared by tests that only need a valid file."""
    from difflab.train import train

    out = tmp_path_factory.mktemp("trained")
    train(compose_train(out, "logger=none"))
    return out / "checkpoints" / "last.ckpt"
