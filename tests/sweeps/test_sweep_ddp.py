"""DDP inside a sweep: every rank of a job runs that job's config in its folder; each job starts its own ranks."""

import json
import re

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from difflab.checkpoint import load_checkpoint
from difflab.cli import ddp
from tests.conftest import CONF, ROOT, run_cli


def test_a_started_rank_runs_its_job_alone(monkeypatch):
    sweep_argv = ["src/train.py", "-m", "schedule=linear,cosine"]
    job = ["schedule=cosine", 'hydra.run.dir="/sweep/1"', "hydra.output_subdir=null", "hydra.mode=RUN"]
    monkeypatch.setenv(ddp.JOB_ARGV, json.dumps(job))
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert ddp.rank_argv(sweep_argv) == sweep_argv  # the job's own process
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert ddp.rank_argv(sweep_argv) == ["src/train.py", *job, "hydra.job.name=train_ddp_process_1"]
    monkeypatch.delenv(ddp.JOB_ARGV)
    assert ddp.rank_argv(sweep_argv) == sweep_argv  # started by torchrun or SLURM: not ours to change


def test_job_argv_keeps_the_config_flags_and_the_jobs_concrete_overrides(tmp_path, monkeypatch):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["schedule=cosine", f"hydra.runtime.output_dir={tmp_path}"],
                      return_hydra_config=True)
    monkeypatch.setattr(HydraConfig.instance(), "cfg", HydraConfig.instance().cfg)  # restored after the test
    HydraConfig.instance().set_config(cfg)
    argv = ddp.job_argv(["src/train.py", "-m", "--config-dir", "sweeps", "-cn", "grid", "schedule=linear,cosine"])
    assert argv[:4] == ["--config-name", "grid", "--config-dir", "sweeps"]
    assert "schedule=cosine" in argv and "schedule=linear,cosine" not in argv
    assert argv[-3:] == [f'hydra.run.dir="{tmp_path}"', "hydra.output_subdir=null", "hydra.mode=RUN"]


@pytest.mark.slow
def test_ddp_sweep_runs_each_job_on_two_processes_in_its_own_folder(tmp_path):
    # A timestamped sweep folder, as by default: a rank that started the sweep again would make a second one.
    proc = run_cli("train", "-m", "--config-dir", str(ROOT / "sweeps"), "--config-name", "grid_schedule_objective",
                   "hydra.sweeper.params.objective=epsilon", "debug=sweep_tiny", "trainer=ddp", "trainer.devices=2",
                   "trainer.accelerator=cpu", f"hydra.sweep.dir={tmp_path}/" + "${now:%H-%M-%S-%f}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("Launching 2 jobs") == 1
    (sweep,) = tmp_path.iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for num, schedule in enumerate(["linear", "cosine"]):
        job = sweep / str(num)
        assert yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())[0] == f"schedule={schedule}"
        ckpt = load_checkpoint(job / "checkpoints" / "last.ckpt")
        assert ckpt["global_step"] == 2
        run_config = ckpt["hyper_parameters"]["run_config"]
        assert run_config["schedule"]["_target_"].endswith(f"{schedule.capitalize()}Schedule")
        assert run_config["trainer"]["devices"] == 2
        assert json.loads((job / "summary.json").read_text())["global_step"] == 2
        # Rank 1 ran in this folder with the same resolved config as rank 0.
        ranks = {r: re.search(rf"config (\w+) on local rank {r}", (job / log).read_text())
                 for r, log in [(0, "train.log"), (1, "train_ddp_process_1.log")]}
        assert ranks[0] and ranks[1] and ranks[0].group(1) == ranks[1].group(1)
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and all(r.endswith(",done") for r in rows[1:])
