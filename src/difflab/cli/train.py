"""`difflab-train model=unet schedule=cosine` (or `python src/train.py ...` in a checkout): train a model."""

from difflab.cli.command import command
from difflab.cli.ddp import ddp_job, is_started_rank, rank_argv
from difflab.train import optimized_value, train


def train_job(cfg):
    with ddp_job(cfg):
        metrics = train(cfg)
    return None if is_started_rank() else optimized_value(cfg, metrics)  # what a sweeper minimises


# Lightning starts DDP ranks by running this command line again (sys.argv[0]: this console script or src/train.py);
# rank_argv makes a rank started inside a sweep's job run that job alone.
main = command("train", train_job, argv=rank_argv)
