"""`difflab-evaluate ckpt=PATH metrics=[fid,kid,nll] num_samples=N sampler=ddim`: evaluate a checkpoint."""

from difflab.cli.command import command
from difflab.evaluate import evaluate

main = command("evaluate", evaluate)
