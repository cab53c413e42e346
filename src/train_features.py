"""Train the FID-domain feature classifier: `python src/train_features.py data=fashion_mnist` writes
src/difflab/metrics/weights/fashion_mnist.pt (see conf/train_features.yaml)."""

import sys
from pathlib import Path

import hydra

from difflab.cli import check_group_overrides, reporting_errors
from difflab.metrics.train_classifier import train_classifier

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train_features")
@reporting_errors
def main(cfg):
    return train_classifier(cfg)["test_accuracy"]


if __name__ == "__main__":
    check_group_overrides(sys.argv[1:], CONFIG_DIR)
    main()
