"""Per-timestep weights of the training loss, written in the objective's own target space.

Each objective knows how its squared error relates to the squared error of x0 (`x0_error_scale`), so a
weighting defined on x0 (Min-SNR) is converted once here, whatever the objective.
"""

from dataclasses import dataclass

import torch

from difflab.errors import ConfigError


@dataclass(frozen=True)
class Uniform:
    """The objective's plain loss: MSE on eps or v; for score, the sigma^2-weighted DSM loss."""

    def __call__(self, objective, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return objective.natural_weight(alpha, sigma)


@dataclass(frozen=True)
class MinSNR:
    """Min-SNR-gamma (Hang et al. 2023, arXiv:2303.09556): x0-space weight min(SNR_t, gamma)."""

    gamma: float = 5.0

    def __post_init__(self):
        if not self.gamma > 0:
            raise ConfigError(f"objective.weighting.gamma={self.gamma} is invalid; allowed: gamma > 0 (paper: 5)")

    def __call__(self, objective, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        snr = (alpha / sigma) ** 2
        return torch.clamp(snr, max=self.gamma) / objective.x0_error_scale(alpha, sigma)
