"""`difflab-train-features data=fashion_mnist`: train the FID-domain feature classifier and write its weights
(by default difflab/metrics/weights/<data>.pt, the shipped file; see conf/train_features.yaml)."""

import sys

import hydra

from difflab.cli import CONFIG_DIR, check_group_overrides, reporting_errors
from difflab.metrics.train_classifier import train_classifier


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train_features")
@reporting_errors
def run(cfg):
    return train_classifier(cfg)["test_accuracy"]  # the value a sweeper optimises


def main() -> None:
    check_group_overrides(sys.argv[1:], CONFIG_DIR)
    run()
