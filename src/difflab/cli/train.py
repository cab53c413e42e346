"""`difflab-train model=unet schedule=cosine` (or `python src/train.py ...` in a checkout): train a model."""

import sys

import hydra

from difflab.cli import CONFIG_DIR, check_group_overrides, reporting_errors
from difflab.extras import check_extras
from difflab.sweeps.ddp import ddp_job, is_started_rank, rank_argv
from difflab.train import optimized_value, train


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
@reporting_errors
def run(cfg):
    check_extras(cfg)
    with ddp_job(cfg):
        metrics = train(cfg)
    return None if is_started_rank() else optimized_value(cfg, metrics)  # what a sweeper minimises


def main() -> None:
    # Lightning starts DDP ranks by running this command line again (sys.argv[0]: this console script or
    # src/train.py); a rank started inside a sweep's job runs that job alone.
    sys.argv = rank_argv(sys.argv)
    check_group_overrides(sys.argv[1:], CONFIG_DIR, "train")
    run()
