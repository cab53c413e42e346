"""The FID a perfect model would score: real training images in place of samples, against the evaluation split.

    .venv/bin/python bench/fid_floor.py [--data digits] [--sizes 512 1024] [--draws 20] [--split test]

At a given number of samples, FID is biased upwards (the sample covariance) and noisy (which images were drawn);
a model whose FID sits at this floor cannot be told from the data by that metric at that size. Each draw takes
`size` distinct training images (all of them if there are fewer) in a random order; the line gives the mean and
the standard deviation over draws, and their range.
"""

import argparse
import statistics

import torch

from difflab.build import instantiate
from difflab.metrics.bootstrap import FrechetToReference, mean_and_cov
from difflab.metrics.features import domain_features
from throughput_config import compose_train


def images(dataset) -> torch.Tensor:
    """All images of a dataset of (image in [-1, 1], label) pairs, stacked."""
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="digits", help="a conf/data option")
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--split", choices=["test", "val"], default="test")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cfg = compose_train(f"data={args.data}")
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    datamodule.setup("test")
    features = domain_features(cfg.data.name)
    with torch.no_grad():
        train = features(images(datamodule.train_set))
        real = features(images(datamodule.test_set if args.split == "test" else datamodule.val_set))
    reference = FrechetToReference(*mean_and_cov(real))
    g = torch.Generator().manual_seed(args.seed)
    print(f"FID-domain of real {cfg.data.name} training images against the {len(real)} {args.split} images "
          f"({len(train)} training images; {args.draws} draws)")
    for size in args.sizes:
        n = min(size, len(train))
        fids = [reference(train[torch.randperm(len(train), generator=g)[:n]]) for _ in range(args.draws)]
        print(f"  {size:6d} images ({n} distinct): {statistics.mean(fids):6.2f} +- {statistics.stdev(fids):.2f}"
              f"  (range {min(fids):.2f} - {max(fids):.2f})")


if __name__ == "__main__":
    main()
