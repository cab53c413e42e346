"""`difflab-apply task=inpaint|superres|denoise|invert|anomaly ckpt=PATH input=test`: apply a trained model."""

from difflab.cli.command import command
from difflab.apply import apply

main = command("apply", apply)
