"""Apply a trained model: `python src/apply.py task=inpaint|superres|denoise|invert|anomaly ckpt=PATH input=test`."""

import sys
from pathlib import Path

import hydra

from difflab.apply import apply
from difflab.cli import check_group_overrides, reporting_errors

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="apply")
@reporting_errors
def main(cfg):
    apply(cfg)


if __name__ == "__main__":
    check_group_overrides(sys.argv[1:], CONFIG_DIR, "apply")
    main()
