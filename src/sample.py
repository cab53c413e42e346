"""Sample from a trained model: `python src/sample.py ckpt=PATH num_samples=64 sampler=ddim temperature=0.8`."""

import sys
from pathlib import Path

import hydra

from difflab.cli import check_group_overrides, reporting_errors
from difflab.sample import sample

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="sample")
@reporting_errors
def main(cfg):
    sample(cfg)


if __name__ == "__main__":
    check_group_overrides(sys.argv[1:], CONFIG_DIR, "sample")
    main()
