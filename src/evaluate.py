"""Evaluate a checkpoint: `python src/evaluate.py ckpt=PATH metrics=[fid,kid,nll] num_samples=N sampler=ddim`."""

import sys
from pathlib import Path

import hydra

from difflab.cli import check_group_overrides, reporting_errors
from difflab.evaluate import evaluate

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
@reporting_errors
def main(cfg):
    evaluate(cfg)


if __name__ == "__main__":
    check_group_overrides(sys.argv[1:], CONFIG_DIR, "evaluate")
    main()
