"""SIGKILL mid-run at a known step (the random-moment test is in tests/training/test_crash_and_cli.py): the resume
loses at most one checkpoint interval."""

import os
import signal
import subprocess
import sys

import pytest

from difflab.checkpoint import load_checkpoint
from tests.conftest import ROOT, TINY, run_in_process


@pytest.mark.slow
def test_kill_loses_at_most_one_checkpoint_interval(tmp_path):
    run, every, killed_at = tmp_path / "run", 3, 7
    args = [*TINY, "logger=none", "trainer.max_steps=20", f"callbacks.checkpoint.every_n_train_steps={every}",
            "+callbacks.killer._target_=tests.faults.helpers.KillAt", f"+callbacks.killer.step={killed_at}",
            f"hydra.run.dir={run}"]
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "train.py"), *args], cwd=ROOT, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert killed_at - every < last["global_step"] <= killed_at
    resumed = run_in_process("train", *TINY, "logger=none", f"trainer.max_steps={killed_at + 1}",
                             f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={tmp_path / 'resumed'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["global_step"] == killed_at + 1
