"""Evaluate a checkpoint: `python src/evaluate.py ckpt=PATH metrics=[fid,kid,nll]`; installed: difflab-evaluate."""

from difflab.cli.evaluate import main

if __name__ == "__main__":
    main()
