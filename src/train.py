"""Train a diffusion model: `python src/train.py model=unet schedule=cosine` (see README); installed: difflab-train."""

from difflab.cli.train import main

if __name__ == "__main__":
    main()
