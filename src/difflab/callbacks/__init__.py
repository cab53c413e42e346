"""Lightning callbacks: EMA weights, checkpoints, divergence, sample grids, evaluation, loss curves, logging."""

from difflab.callbacks.checkpoint import Checkpoint
from difflab.callbacks.divergence import Divergence
from difflab.callbacks.ema import EMA, ema_module
from difflab.callbacks.evaluation import Evaluation
from difflab.callbacks.grad_norm import GradNorm
from difflab.callbacks.loss_curve import LossCurve
from difflab.callbacks.lr_monitor import LearningRateMonitor
from difflab.callbacks.sample_grid import SampleGrid
from difflab.callbacks.trajectory import Trajectory, trajectory_strip

__all__ = ["Checkpoint", "Divergence", "EMA", "Evaluation", "LossCurve", "SampleGrid", "ema_module"]
__all__ += ["GradNorm", "LearningRateMonitor", "Trajectory", "trajectory_strip"]
