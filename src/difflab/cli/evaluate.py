"""`difflab-evaluate ckpt=PATH metrics=[fid,kid,nll] num_samples=N sampler=ddim`: evaluate a checkpoint."""

import sys

import hydra

from difflab.cli import CONFIG_DIR, check_group_overrides, reporting_errors
from difflab.evaluate import evaluate
from difflab.extras import check_extras


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
@reporting_errors
def run(cfg):
    check_extras(cfg)
    evaluate(cfg)


def main() -> None:
    check_group_overrides(sys.argv[1:], CONFIG_DIR, "evaluate")
    run()
