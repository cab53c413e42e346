"""`difflab-apply task=inpaint|superres|denoise|invert|anomaly ckpt=PATH input=test`: apply a trained model."""

from difflab.apps.apply import apply
from difflab.cli.command import command

main = command("apply", apply)
