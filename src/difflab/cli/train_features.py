"""`difflab-train-features data=fashion_mnist`: train the FID-domain feature classifier and write its weights
(by default difflab/metrics/weights/<data>.pt, the shipped file; see conf/train_features.yaml)."""

from difflab.cli.command import command
from difflab.metrics.train_classifier import train_classifier


def train_features_job(cfg):
    return train_classifier(cfg)["test_accuracy"]  # the value a sweeper optimises


main = command("train_features", train_features_job, compose_check=False)
