"""Apply a trained model: `python src/apply.py task=inpaint ckpt=PATH input=test`; installed: difflab-apply."""

from difflab.cli.apply import main

if __name__ == "__main__":
    main()
