"""Train a diffusion model: `python src/train.py model=unet schedule=cosine` (see README)."""

import sys
from pathlib import Path

import hydra

from difflab.cli import check_group_overrides, reporting_errors
from difflab.train import optimized_value, train

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
@reporting_errors
def main(cfg):
    return optimized_value(cfg, train(cfg))


if __name__ == "__main__":
    check_group_overrides(sys.argv[1:], CONFIG_DIR)
    main()
