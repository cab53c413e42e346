"""`difflab-sample ckpt=PATH num_samples=64 sampler=ddim temperature=0.8`: sample from a trained model."""

from difflab.cli.command import command
from difflab.sample import sample

main = command("sample", sample)
