"""Diffusion Transformer (DiT) denoiser with adaLN-Zero conditioning.

Peebles & Xie 2023, "Scalable Diffusion Models with Transformers", https://arxiv.org/abs/2212.09748

The image is cut into p x p patches, each a token; transformer blocks are conditioned on the
timestep (+ label) vector through adaptive LayerNorm whose modulation starts at zero, so every
block starts as the identity. The network knows nothing about noise schedules.
"""

import torch
import torch.nn.functional as F
from torch import nn

from difflab.errors import ConfigError
from difflab.nets.checks import check_positive, divisors
from difflab.nets.embeddings import ConditionEmbedding


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x [N x T x D] scaled and shifted per sample by shift, scale [N x D]."""
    return x * (1 + scale[:, None]) + shift[:, None]


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """Fixed sin-cos features of positions: pos [M] float64 -> [M x dim]."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    args = pos[:, None] * omega[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def sincos_2d(dim: int, grid_size: int) -> torch.Tensor:
    """2-D sin-cos positional embedding (MAE / DiT): half the channels encode the row, half the column.

    Returns [grid_size**2 x dim] float32, tokens in row-major order (as patchify flattens them).
    """
    coords = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")
    emb = torch.cat([sincos_1d(dim // 2, rows.flatten()), sincos_1d(dim // 2, cols.flatten())], dim=1)
    return emb.float()


class Attention(nn.Module):
    """Multi-head self-attention over tokens: [N x T x D] -> [N x T x D]."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # [N x heads x T x D/heads]
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class DiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-Zero: x [N x T x D], c [N x D] -> [N x T x D]."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        # No affine LayerNorm parameters: the per-sample shift/scale from c take their place.
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN(c).chunk(6, dim=1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1))
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    """adaLN then a linear map from each token to its p*p*C patch: [N x T x D] -> [N x T x p*p*C]."""

    def __init__(self, dim: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch_size * patch_size * out_channels)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


def _check(image_size, in_channels, patch_size, hidden_size, depth, num_heads, mlp_ratio):
    """Raise ConfigError, naming the config key, for any value the network cannot be built with."""
    positive = {"data.image_size": image_size, "data.channels": in_channels,
                "model.patch_size": patch_size, "model.hidden_size": hidden_size,
                "model.depth": depth, "model.num_heads": num_heads}
    check_positive(positive)
    if not mlp_ratio > 0:
        raise ConfigError(f"model.mlp_ratio={mlp_ratio} is invalid; allowed: a positive number")
    if image_size % patch_size:
        raise ConfigError(f"model.patch_size={patch_size} does not divide data.image_size="
                          f"{image_size}; allowed: {divisors(image_size)}")
    if hidden_size % num_heads:
        raise ConfigError(f"model.num_heads={num_heads} does not divide model.hidden_size="
                          f"{hidden_size}; allowed: {divisors(hidden_size)}")
    if hidden_size % 4:  # the 2-D sin-cos embedding splits channels into (row, col) x (sin, cos)
        raise ConfigError(f"model.hidden_size={hidden_size} is invalid; allowed: a multiple of 4")


class DiT(nn.Module):
    """DiT: x [N x C x H x W] (H = W = image_size), t [N] noise level (int or float), y [N] int64 or None -> [N x C x H x W]."""

    def __init__(self, image_size: int, in_channels: int, *, patch_size: int = 2,
                 hidden_size: int = 384, depth: int = 12, num_heads: int = 6,
                 mlp_ratio: float = 4.0, num_classes: int | None = None):
        super().__init__()
        _check(image_size, in_channels, patch_size, hidden_size, depth, num_heads, mlp_ratio)
        self.image_size, self.in_channels, self.patch_size = image_size, in_channels, patch_size
        self.num_classes = num_classes

        self.patchify = nn.Conv2d(in_channels, hidden_size, patch_size, stride=patch_size)
        # Fixed, not learned (as in DiT); a buffer so it follows .to(device) but is not saved.
        pos = sincos_2d(hidden_size, image_size // patch_size)[None]
        self.register_buffer("pos_embed", pos, persistent=False)
        self.cond = ConditionEmbedding(hidden_size, num_classes)
        self.blocks = nn.ModuleList(DiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.final = FinalLayer(hidden_size, patch_size, in_channels)
        self._init_weights()

    def _init_weights(self):
        """DiT's init: Xavier linears, N(0, 0.02) embeddings, and zeros where adaLN-Zero needs them."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        # The patch conv is a linear map on flattened patches; initialise it like one.
        nn.init.xavier_uniform_(self.patchify.weight.view(self.patchify.weight.shape[0], -1))
        nn.init.zeros_(self.patchify.bias)
        for layer in (self.cond.time.mlp[0], self.cond.time.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        if self.cond.label is not None:
            nn.init.normal_(self.cond.label.table.weight, std=0.02)
        # adaLN-Zero: zero gates make each block the identity at init, and a zero final layer
        # makes the untrained output exactly 0; the paper found this trains best.
        for block in self.blocks:
            nn.init.zeros_(block.adaLN[-1].weight)
            nn.init.zeros_(block.adaLN[-1].bias)
        for layer in (self.final.adaLN[-1], self.final.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """[N x T x p*p*C] -> [N x C x H x W], inverting patchify's row-major token order."""
        n, p, c = tokens.shape[0], self.patch_size, self.in_channels
        g = self.image_size // p
        x = tokens.reshape(n, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)  # N, C, g, p, g, p
        return x.reshape(n, c, g * p, g * p)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"DiT built for {self.image_size}x{self.image_size} inputs, "
                             f"got {tuple(x.shape[-2:])}")
        c = self.cond(t, y)
        h = self.patchify(x).flatten(2).transpose(1, 2) + self.pos_embed  # [N x T x D]
        for block in self.blocks:
            h = block(h, c)
        return self.unpatchify(self.final(h, c))
