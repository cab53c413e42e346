"""DDP ranks of a train job, alone or in a sweep: each rank runs that job's single run; each job starts its own ranks.

Lightning starts ranks 1..N-1 by re-running the script with the parent's command line plus `hydra.run.dir=...`
(lightning.fabric.strategies.launchers.subprocess_script._hydra_subprocess_cmd). Under `-m` that command line is
the whole sweep, in the wrong folder, and a sampling sweeper (Optuna) would draw other values there. So the job's
rank zero leaves a single-run command line for the job in JOB_ARGV (Lightning copies the environment to the
ranks it starts), and a rank started with it runs exactly that: the job's concrete overrides, in the job's folder.
"""

import hashlib
import json
import logging
import os
import sys
from contextlib import contextmanager

import torch.distributed as dist
from hydra._internal.utils import get_args_parser  # the parser hydra.main itself reads the command line with
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

JOB_ARGV = "DIFFLAB_JOB_ARGV"
# Set by Lightning's launcher on the job's rank zero; left over, they would make the next job of a sweep in the
# same process believe its ranks were started for it (LightningEnvironment.creates_processes_externally).
LAUNCHER_VARS = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# Flags of the command line that choose the config, kept for the ranks (everything else comes from HydraConfig).
CONFIG_FLAGS = (("config_path", "--config-path"), ("config_name", "--config-name"), ("config_dir", "--config-dir"))

log = logging.getLogger(__name__)


def is_started_rank() -> bool:
    """True in a rank that Lightning started for a job (not the job's own process)."""
    return JOB_ARGV in os.environ and os.environ.get("LOCAL_RANK", "0") != "0"


def rank_argv(argv: list[str]) -> list[str]:
    """The command line a started rank must run: its job's single run (argv unchanged in any other process)."""
    if not is_started_rank():
        return argv
    return [argv[0], *json.loads(os.environ[JOB_ARGV]), f"hydra.job.name=train_ddp_process_{os.environ['LOCAL_RANK']}"]


def job_argv(argv: list[str]) -> list[str]:
    """The current job as a single run: the config flags of `argv`, the job's concrete overrides, its folder."""
    args = get_args_parser().parse_args(argv[1:])
    flags = [x for attr, flag in CONFIG_FLAGS if getattr(args, attr) for x in (flag, getattr(args, attr))]
    hc = HydraConfig.get()
    return [
        *flags,
        *hc.overrides.hydra,
        *hc.overrides.task,
        f'hydra.run.dir="{hc.runtime.output_dir}"',
        "hydra.output_subdir=null",  # the job's own process writes .hydra/
        "hydra.mode=RUN",  # also when a sweep config sets hydra.mode=MULTIRUN
    ]


def config_digest(cfg: DictConfig) -> str:
    """A short hash of the resolved config: equal on every rank of a job."""
    return hashlib.sha1(OmegaConf.to_yaml(cfg, resolve=True).encode()).hexdigest()[:12]


@contextmanager
def ddp_job(cfg: DictConfig):
    """Run one job (of a sweep or alone) so that DDP ranks started inside it run the same job, and the next job
    of the sweep starts afresh: the launcher's variables and the process group do not outlive the job."""
    log.info(f"config {config_digest(cfg)} on local rank {os.environ.get('LOCAL_RANK', '0')}")
    if is_started_rank():
        yield
        return
    saved = {k: os.environ.get(k) for k in (JOB_ARGV, *LAUNCHER_VARS)}
    os.environ[JOB_ARGV] = json.dumps(job_argv(sys.argv))
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
