"""Export a trained model: `python src/export.py ckpt=PATH out=DIR`; installed: difflab-export."""

from difflab.cli.export import main

if __name__ == "__main__":
    main()
