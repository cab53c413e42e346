"""The sweep's table: one row per job from the files each job leaves, also for jobs that failed or never ended."""

import csv
import json

import pytest
import yaml

from difflab.sweeps.summary import SweepSummary
from tests.conftest import run_in_process

METRICS = {"train_loss": "train/loss", "fid": "eval/fid"}


def fake_job(sweep, num, overrides, summary=None, status=None):
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if summary is not None:
        (job / "summary.json").write_text(json.dumps(summary))
    if status is not None:
        (job / "status.txt").write_text(status + "\n")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_rows_say_what_became_of_each_job(tmp_path):
    done = {"metrics": {"train/loss": 0.5, "eval/fid": 12.25}, "seconds": 3.5, "global_step": 2}
    fake_job(tmp_path, 10, ["debug=x", "model=dit"], {"metrics": {"train/loss": 0.25}, "seconds": 1.0}, "done")
    fake_job(tmp_path, 0, ["debug=x", "model=unet"], done, "done")
    fake_job(tmp_path, 1, ["debug=x", "model=foo"], status="failed: ValueError: bad")
    fake_job(tmp_path, 2, ["debug=x", "model=bar"], status="running")
    fake_job(tmp_path, 3, ["debug=x", "model=baz"])
    summary = SweepSummary(METRICS)
    summary.sweep_dir = tmp_path
    summary.write()

    rows = read_csv(tmp_path / "summary.csv")
    assert [r["job"] for r in rows] == ["0", "1", "2", "3", "10"]  # job order, not folder-name order
    assert rows[0] == {"job": "0", "overrides": "model=unet", "train_loss": "0.5", "fid": "12.25", "seconds": "3.5",
                       "status": "done"}
    assert rows[1]["status"] == "failed: ValueError: bad" and rows[1]["train_loss"] == ""
    assert rows[2]["status"].startswith("did not end")
    assert rows[3]["status"] == "no summary.json"
    assert rows[4]["fid"] == "" and rows[4]["train_loss"] == "0.25"  # FID empty where it was never computed
    md = (tmp_path / "summary.md").read_text().splitlines()
    assert md[0] == "Every job: `debug=x`"
    assert md[2] == "| job | overrides | train_loss | fid | seconds | status |"
    assert md[4] == "| 0 | model=unet | 0.5 | 12.25 | 3.5 | done |"
    assert len(md) == 4 + 5


@pytest.mark.slow
def test_multirun_writes_a_summary_of_every_job(tmp_path):
    proc = run_in_process("train", "-m", "debug=sweep_tiny", "model=unet_small,dit_small", "objective=epsilon,v",
                          f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_csv(tmp_path / "summary.csv")
    assert [r["overrides"] for r in rows] == ["model=unet_small objective=epsilon", "model=unet_small objective=v",
                                              "model=dit_small objective=epsilon", "model=dit_small objective=v"]
    for num, row in enumerate(rows):
        job = json.loads((tmp_path / str(num) / "summary.json").read_text())
        assert row["status"] == "done" and row["fid"] == ""
        assert float(row["train_loss"]) == job["metrics"]["train/loss"] and job["global_step"] == 2
        assert (tmp_path / str(num) / "checkpoints" / "last.ckpt").is_file()
    md = (tmp_path / "summary.md").read_text()
    assert "Every job: `debug=sweep_tiny`" in md and "| 3 | model=dit_small objective=v |" in md
