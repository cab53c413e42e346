"""Conditioning embeddings shared by the denoiser networks: timestep and class label.

The networks see a noise-level input t and integer labels; what t means is the diffusion code's business: the
integer level of a discrete schedule (0..T-1) or a continuous process's c_noise, in about the same range
(diffusion/processes.py). Classifier-free guidance (Ho & Salimans 2022,
https://arxiv.org/abs/2207.12598) needs a "no label" input: it is the extra index `num_classes`.
Dropping labels to that index during training is the caller's job, not the network's.
"""

import math

import torch
from torch import nn

from difflab.nets.checks import check_num_classes


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer-style sinusoidal features of scalar positions (Vaswani et al. 2017).

    t: [N] timesteps (any numeric dtype; integers are cast to float) -> [N x dim].
    """
    half = dim // 2
    # Geometric frequencies from 1 down to 1/max_period, so both t=1 and t=999 are resolved.
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:  # keep the requested width for odd dims
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedding(nn.Module):
    """Sinusoidal features followed by a two-layer MLP (Ho et al. 2020; Peebles & Xie 2023).

    t: [N] noise levels, integer or float -> [N x dim].
    """

    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t, self.freq_dim))


class LabelEmbedding(nn.Module):
    """Lookup table with num_classes + 1 rows; row num_classes is the null ("no label") class.

    y: [N] int64 labels in 0..num_classes -> [N x dim].
    """

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.table(y)


def class_labels(t: torch.Tensor, y: torch.Tensor | None, num_classes: int | None) -> torch.Tensor | None:
    """The labels a net built with num_classes is fed: y [N] or None -> [N] int64, with None as the null class
    num_classes; None for an unconditional net, which raises if it is given labels."""
    if num_classes is None:
        if y is not None:
            raise ValueError("labels y were given to an unconditional network; "
                             "set model.num_classes=${data.num_classes} to condition on them")
        return None
    if y is None:
        return torch.full_like(t, num_classes, dtype=torch.long)
    if y.shape != t.shape:
        raise ValueError(f"y must have shape {tuple(t.shape)} like t, got {tuple(y.shape)}")
    return y


class ConditionEmbedding(nn.Module):
    """Sum of timestep and (optional) label embeddings: the vector every block is conditioned on.

    t: [N] int64, y: [N] int64 or None -> [N x dim].
    With num_classes=None the net is unconditional and passing y is an error; with num_classes
    set, y=None means "no label" and selects the null class.
    """

    def __init__(self, dim: int, num_classes: int | None, freq_dim: int = 256):
        super().__init__()
        check_num_classes(num_classes)
        self.num_classes = num_classes
        self.time = TimestepEmbedding(dim, freq_dim)
        self.label = LabelEmbedding(num_classes, dim) if num_classes is not None else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if t.ndim != 1:
            raise ValueError(f"t must have shape [N], got {tuple(t.shape)}")
        y = class_labels(t, y, self.num_classes)
        emb = self.time(t)
        return emb if y is None else emb + self.label(y)
