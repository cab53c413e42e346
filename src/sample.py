"""Sample from a trained model: `python src/sample.py ckpt=PATH num_samples=64`; installed: difflab-sample."""

from difflab.cli.sample import main

if __name__ == "__main__":
    main()
