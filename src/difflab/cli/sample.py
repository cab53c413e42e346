"""`difflab-sample ckpt=PATH num_samples=64 sampler=ddim temperature=0.8`: sample from a trained model."""

import sys

import hydra

from difflab.cli import CONFIG_DIR, check_group_overrides, reporting_errors
from difflab.extras import check_extras
from difflab.sample import sample


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="sample")
@reporting_errors
def run(cfg):
    check_extras(cfg)
    sample(cfg)


def main() -> None:
    check_group_overrides(sys.argv[1:], CONFIG_DIR, "sample")
    run()
