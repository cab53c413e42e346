"""`difflab-apply task=inpaint|superres|denoise|invert|anomaly ckpt=PATH input=test`: apply a trained model."""

import sys

import hydra

from difflab.apply import apply
from difflab.cli import CONFIG_DIR, check_group_overrides, reporting_errors
from difflab.extras import check_extras


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="apply")
@reporting_errors
def run(cfg):
    check_extras(cfg)
    apply(cfg)


def main() -> None:
    check_group_overrides(sys.argv[1:], CONFIG_DIR, "apply")
    run()
