"""A table of a sweep's jobs (overrides, final metrics, time, status), written as CSV and Markdown in the sweep folder.

It is built from the files every job leaves (.hydra/overrides.yaml, summary.json, status.txt), never from state
in this process, so it is the same whichever launcher ran the jobs and wherever.
"""

import atexit
import csv
import json
import logging
import os
import socket
import sys
from pathlib import Path

import yaml
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from difflab.cli import one_line

# Written where the job runs: "running pid <pid> on <host>" when it starts, then "done" or "failed: <error>" (also
# for a job that exits with a one-line error: record_job_error); a job that stopped without ending (killed, timed
# out) keeps "running ...", and its pid then tells a killed job from a running one.
STATUS_FILE = "status.txt"
DEFAULT_METRICS = {"train_loss": "train/loss", "fid": "eval/fid"}
log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """Writes <sweep dir>/summary.csv and summary.md when a sweep ends, also when it stops early (a job failed,
    Ctrl-C, an error): then from the jobs that had started. `metrics` maps column names to summary.json keys."""

    def __init__(self, metrics: dict[str, str]):
        self.metrics = dict(metrics)
        self.sweep_dir = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.sweep_dir = Path(config.hydra.sweep.dir)
        atexit.register(self.write)  # on_multirun_end is skipped when the sweep raises

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        atexit.unregister(self.write)
        self.write()

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        write_job_status(config.hydra, f"running pid {os.getpid()} on {socket.gethostname()}")

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        if job_return.status != JobStatus.FAILED:
            write_job_status(config.hydra, "done")
            return
        e = job_return._return_value  # `return_value` would raise it
        write_job_status(config.hydra, f"failed: {type(e).__name__}: {one_line(e)}")

    def write(self) -> None:
        if self.sweep_dir is None or not self.sweep_dir.is_dir():  # stopped before the sweeper made it
            return
        write_summary(self.sweep_dir, self.metrics)


def write_summary(sweep_dir: Path, metrics: dict[str, str]) -> None:
    """summary.csv and summary.md of the jobs under sweep_dir (also after the sweep's own process was killed)."""
    rows = job_rows(sweep_dir, metrics)
    header = ["job", "overrides", *metrics, "seconds", "status"]
    common = common_overrides([r["overrides"] for r in rows])
    for r in rows:
        r["overrides"] = " ".join(o for o in r["overrides"] if o not in common)
    with open(sweep_dir / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "summary.md").write_text(markdown(rows, header, common))
    log.info(f"Summary of {len(rows)} jobs: {sweep_dir / 'summary.md'}")


def job_rows(sweep_dir: Path, metrics: dict[str, str]) -> list[dict]:
    """One row per job folder (one holding .hydra/overrides.yaml), in job order."""
    rows = []
    for overrides_file in sweep_dir.glob("**/.hydra/overrides.yaml"):
        job_dir = overrides_file.parent.parent
        row = {"job": job_number(job_dir), "overrides": yaml.safe_load(overrides_file.read_text()) or []}
        summary = read_summary(job_dir / "summary.json")
        values = summary.get("metrics", {})
        row.update({name: values.get(key, "") for name, key in metrics.items()})
        row["seconds"] = summary.get("seconds", "")
        row["status"] = job_status(job_dir, summary)
        rows.append(row)
    return sorted(rows, key=lambda r: (not isinstance(r["job"], int), r["job"]))


def job_status(job_dir: Path, summary: dict) -> str:
    status = (job_dir / STATUS_FILE).read_text().strip() if (job_dir / STATUS_FILE).is_file() else ""
    if status.startswith("running"):
        return unended_status(status)
    if status == "done" and not summary:
        return "done, no summary.json"
    return status or ("done" if summary else "no summary.json")


def unended_status(status: str) -> str:
    """What became of a job that wrote no final status, from the pid and host it started with."""
    words = status.split()  # running pid <pid> on <host>
    if len(words) == 5 and words[1] == "pid" and words[2].isdigit() and words[4] == socket.gethostname():
        pid = int(words[2])
        if pid != os.getpid():
            if not alive(pid):
                return f"killed (its process {pid} ended without a status; a SIGKILL, the OOM killer, ...)"
            return f"running (process {pid})"
    return "did not end (stopped, killed or still running)"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_job_status(hydra_cfg: DictConfig, status: str) -> None:
    if hydra_cfg.mode == RunMode.MULTIRUN:  # a run's DDP ranks and single runs leave no status
        (Path(hydra_cfg.runtime.output_dir) / STATUS_FILE).write_text(status + "\n")


def record_job_error(e: BaseException) -> None:
    """Mark the running job failed with e's one line: a job that exits with a one-line error (sys.exit) ends
    without Hydra's job-end callback, which would have written it."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        write_job_status(HydraConfig.get(), f"failed: {type(e).__name__}: {one_line(e)}")


def job_number(job_dir: Path) -> int | str:
    hydra_file = job_dir / ".hydra" / "hydra.yaml"
    try:
        return int(yaml.safe_load(hydra_file.read_text())["hydra"]["job"]["num"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return job_dir.name


def read_summary(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def common_overrides(overrides: list[list[str]]) -> list[str]:
    """Overrides every job shares (none when there is a single job: then its overrides are the point)."""
    if len(overrides) < 2:
        return []
    return [o for o in overrides[0] if all(o in other for other in overrides[1:])]


def markdown(rows: list[dict], header: list[str], common: list[str]) -> str:
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v).replace("|", "\\|")

    lines = [f"Every job: `{' '.join(common)}`", ""] if common else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    """`python -m difflab.sweeps.summary SWEEP_DIR`: write the summary again, e.g. of a sweep whose own process
    was killed before it could."""
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        sys.exit("usage: python -m difflab.sweeps.summary <sweep dir>")
    sweep_dir = Path(argv[0])
    try:
        saved = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())["hydra"]["callbacks"]["summary"]["metrics"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        saved = None
    write_summary(sweep_dir, saved or DEFAULT_METRICS)
    print(sweep_dir / "summary.md")


if __name__ == "__main__":
    main(sys.argv[1:])
