"""Train a diffusion model: `python src/train.py model=unet schedule=cosine` (see README)."""

import sys
from pathlib import Path

import hydra

from difflab.cli import check_group_overrides, reporting_errors
from difflab.sweeps.ddp import ddp_job, is_started_rank, rank_argv
from difflab.train import optimized_value, train

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
@reporting_errors
def main(cfg):
    with ddp_job(cfg):
        metrics = train(cfg)
    return None if is_started_rank() else optimized_value(cfg, metrics)


if __name__ == "__main__":
    sys.argv = rank_argv(sys.argv)  # a DDP rank started inside a sweep's job runs that job alone
    check_group_overrides(sys.argv[1:], CONFIG_DIR, "train")
    main()
