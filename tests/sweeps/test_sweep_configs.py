"""The ready sweeps (sweeps/*.yaml) and launchers (conf/hydra/launcher/*.yaml) compose and run as documented."""

import csv

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from difflab.sweeps.check import probe_overrides
from tests.conftest import CONF, ROOT, run_cli, run_in_process

SWEEPS = ROOT / "sweeps"
# With debug=sweep_tiny: one 2-batch epoch, then FID on 16 samples, so that eval/fid is logged.
TINY_FID = ["debug=sweep_tiny", "trainer.max_steps=-1", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
            "callbacks.evaluation.every_n_epochs=1", "callbacks.evaluation.num_samples=16"]


def compose_sweep(name, *overrides):
    with initialize_config_dir(str(SWEEPS), version_base="1.3"):
        return compose(name, overrides=[f"hydra.searchpath=[file://{CONF}]", *overrides], return_hydra_config=True)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_grid_config_is_the_training_config_with_a_schedule_objective_grid():
    cfg = compose_sweep("grid_schedule_objective")
    assert cfg.task_name == "train" and cfg.model._target_.endswith("UNet")
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    assert len(probe_overrides(params)) == 1 + 1 + 2  # first values, then each other schedule and objective
    assert params == ["schedule=linear,cosine", "objective=epsilon,v,score"]


def test_optuna_config_searches_existing_keys_for_the_lowest_fid():
    cfg = compose_sweep("optuna_fid")
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.sweeper.direction == "minimize"
    assert cfg.optimized_metric == "eval/fid" and cfg.callbacks.evaluation.every_n_epochs > 0
    for key in cfg.hydra.sweeper.params:
        assert OmegaConf.select(cfg, key) is not None, key


def test_wandb_sweep_runs_train_with_hydra_overrides():
    spec = yaml.safe_load((SWEEPS / "wandb_fid.yaml").read_text())
    assert spec["program"] == "src/train.py" and (ROOT / spec["program"]).is_file()
    assert spec["metric"] == {"name": "eval/fid", "goal": "minimize"} and spec["method"] == "bayes"
    assert spec["command"][:3] == ["${env}", "${interpreter}", "${program}"]
    assert spec["command"][-1] == "${args_no_hyphens}" and "logger=wandb" in spec["command"]
    # The arguments the agent passes, built by wandb's own code from one sampled value per parameter.
    sampled = {k: {"value": v.get("min", v.get("value"))} for k, v in spec["parameters"].items()}
    args = create_sweep_command_args({"args": sampled})["args_no_hyphens"]
    fixed = [c for c in spec["command"] if not c.startswith("${")]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*fixed, *args])
    assert cfg.logger.wandb.mode == "online"
    for key, value in sampled.items():
        assert OmegaConf.select(cfg, key) == value["value"], key


def test_slurm_launcher_takes_nodes_and_gpus_from_the_trainer(monkeypatch):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2",
                                          "trainer.devices=4", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    monkeypatch.setattr(HydraConfig.instance(), "cfg", HydraConfig.instance().cfg)  # restored after the test
    HydraConfig.instance().set_config(cfg)  # the launcher's ${hydra:...} keys resolve against it
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 4, 4)
    assert launcher["partition"] == "gpu" and launcher["timeout_min"] > 0


@pytest.mark.slow
def test_optuna_sweep_minimises_fid(tmp_path):
    proc = run_in_process("train", "-m", "--config-dir", str(SWEEPS), "--config-name", "optuna_fid", *TINY_FID,
                          "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_csv(tmp_path / "summary.csv")
    assert len(rows) == 2 and all(r["status"] == "done" for r in rows)
    assert all(r["overrides"].startswith("optimizer.lr=") for r in rows)
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(float(r["fid"]) for r in rows))


@pytest.mark.slow
def test_optuna_study_in_sqlite_resumes_across_sweeps(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"  # as README shows; optuna<3 needs SQLAlchemy<2 for it
    for n_trials, sweep in [(2, "first"), (1, "again")]:
        proc = run_in_process("train", "-m", "--config-dir", str(SWEEPS), "--config-name", "optuna_fid",
                              "debug=sweep_tiny", "optimized_metric=train/loss", f"hydra.sweeper.n_trials={n_trials}",
                              f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={tmp_path / sweep}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="difflab_fid", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3  # the second sweep added to the first's study
    rows = read_csv(tmp_path / "first" / "summary.csv") + read_csv(tmp_path / "again" / "summary.csv")
    losses = [float(r["train_loss"]) for r in rows]
    assert sorted(t.value for t in study.trials) == pytest.approx(sorted(losses))


@pytest.mark.slow
def test_optuna_sweep_whose_metric_is_never_logged_stops_with_one_line(tmp_path):
    # a real process: the summary of a sweep that stops is written when its process exits
    proc = run_cli("train", "-m", "--config-dir", str(SWEEPS), "--config-name", "optuna_fid", "debug=sweep_tiny",
                   "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith("error: optimized_metric=eval/fid was never logged"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0"]  # no second trial
    status = read_csv(tmp_path / "summary.csv")[0]["status"]  # the job's one-line error, not "did not end"
    assert status.startswith("failed: ConfigError: optimized_metric=eval/fid was never logged"), status


@pytest.mark.slow
def test_submitit_local_sweep_summarises_every_job_even_a_failed_one(tmp_path):
    # A value of the right type that only Lightning refuses, inside the job (a mistyped one stops the sweep first).
    proc = run_cli("train", "-m", "hydra/launcher=local", "debug=sweep_tiny", "trainer.accelerator=foo,cpu",
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode != 0  # the sweep reports the failed job once every job has run
    assert "Submitit 'local' sweep output dir" in proc.stdout
    assert len(list((tmp_path / ".submitit").glob("*/*_result.pkl"))) == 2  # the jobs ran in submitit's processes
    failed, done = read_csv(tmp_path / "summary.csv")
    assert failed["overrides"] == "trainer.accelerator=foo" and failed["status"].startswith("failed: ")
    assert "invalid accelerator name" in failed["status"]  # written by the job's own process
    assert done["overrides"] == "trainer.accelerator=cpu" and done["status"] == "done"
    assert (tmp_path / "1" / "summary.json").is_file() and (tmp_path / "1" / "checkpoints" / "last.ckpt").is_file()
