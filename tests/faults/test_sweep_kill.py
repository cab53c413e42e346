"""A job of a sweep killed by SIGKILL: the summary lists it as killed, apart from jobs that failed with an error,
and the job resumes from its last.ckpt having lost at most one checkpoint interval."""

import csv
import os
import signal
import socket
import subprocess
import sys

import pytest
import yaml

from difflab.checkpoint import load_checkpoint
from difflab.sweeps.summary import main as write_summary_again
from tests.conftest import ROOT, run_in_process


@pytest.mark.slow
def test_killed_job_is_listed_as_killed_and_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "debug=sweep_tiny", "logger=none", "trainer.max_steps=4", "callbacks.checkpoint.every_n_train_steps=1",
            "+callbacks.killer._target_=tests.faults.helpers.KillAt", "+callbacks.killer.step=1000,2",
            f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0"}
    # The basic launcher runs every job in the sweep's process, so job 1's SIGKILL takes the sweep with it
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "train.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (sweep / "summary.csv").exists()  # nothing ran after the kill
    write_summary_again([str(sweep)])
    with open(sweep / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"].split()[0] for r in rows] == ["done", "killed"], rows
    assert "+callbacks.killer.step=2" in rows[1]["overrides"] and rows[1]["train_loss"] == ""

    last = sweep / "1" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == 2  # killed as step 2 began: nothing lost with a save every step
    job = [o for o in yaml.safe_load((sweep / "1" / ".hydra" / "overrides.yaml").read_text()) if "killer" not in o]
    resumed = run_in_process("train", *job, f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'resumed'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["global_step"] == 4


@pytest.mark.slow
def test_a_launcher_that_outlives_its_jobs_writes_killed_in_the_summary(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    args = ["-m", "hydra/launcher=local", "debug=sweep_tiny", "logger=none",
            "+callbacks.killer._target_=tests.faults.helpers.KillAt", "+callbacks.killer.step=1",
            "+hydra.callbacks.no_result_wait._target_=tests.faults.helpers.NoResultWait", f"hydra.sweep.dir={tmp_path}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "train.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0  # submitit reports the job that left no result
    with open(tmp_path / "summary.csv", newline="") as f:
        assert next(csv.DictReader(f))["status"].startswith("killed (its process")


def test_a_job_without_final_status_is_told_apart_by_its_process():
    from difflab.sweeps.summary import unended_status

    host = socket.gethostname()
    gone = subprocess.Popen(["true"])
    gone.wait()
    with subprocess.Popen(["sleep", "30"]) as running:
        assert unended_status(f"running pid {running.pid} on {host}") == f"running (process {running.pid})"
        running.kill()
    assert unended_status(f"running pid {gone.pid} on {host}").startswith(f"killed (its process {gone.pid} ended")
    # this process (a job stopped inside the sweep's own process), another host, or the old bare status
    for status in [f"running pid {os.getpid()} on {host}", "running pid 1 on elsewhere", "running"]:
        assert unended_status(status).startswith("did not end"), status
