"""Train the FID-domain feature classifier: `python src/train_features.py data=fashion_mnist`; installed:
difflab-train-features."""

from difflab.cli.train_features import main

if __name__ == "__main__":
    main()
