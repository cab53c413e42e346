"""`difflab-export ckpt=PATH out=DIR` (or `python src/export.py ...` in a checkout): a trained model as a folder of
configs and safetensors; a diffusers pipeline for model=diffusers_unet."""

from difflab.cli.command import command
from difflab.export import export

main = command("export", export)
