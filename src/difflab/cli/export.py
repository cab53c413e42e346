"""`difflab-export ckpt=PATH out=DIR` (or `python src/export.py ...` in a checkout): a trained model as a folder of
configs and safetensors; a diffusers pipeline for model=diffusers_unet."""

import sys

import hydra

from difflab.cli import CONFIG_DIR, check_group_overrides, reporting_errors
from difflab.export import export
from difflab.extras import check_extras


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
@reporting_errors
def run(cfg):
    check_extras(cfg)
    export(cfg)


def main() -> None:
    check_group_overrides(sys.argv[1:], CONFIG_DIR, "export")
    run()
