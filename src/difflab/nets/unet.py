"""Convolutional U-Net denoiser in the DDPM / ADM style.

Ho et al. 2020, "Denoising Diffusion Probabilistic Models", https://arxiv.org/abs/2006.11239
Dhariwal & Nichol 2021, "Diffusion Models Beat GANs on Image Synthesis", https://arxiv.org/abs/2105.05233

The network maps (x [N x C x H x W], t [N], y [N] or None) to a tensor shaped like x. It knows
nothing about noise schedules or what its output is meant to predict.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from difflab.errors import ConfigError
from difflab.nets.checks import check_positive, divisors
from difflab.nets.embeddings import ConditionEmbedding


def zero_init(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters, so the residual branch it ends starts switched off."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """Two GroupNorm-SiLU-conv layers; the condition enters as an ADM scale-shift on the second norm.

    x: [N x in_ch x H x W], emb: [N x emb_dim] -> [N x out_ch x H x W].
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.dropout = nn.Dropout(dropout)
        # Zero init: each block starts as its skip path, which keeps activations at the input's
        # scale however deep the net is and lets training switch the blocks on gradually.
        self.conv2 = zero_init(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention across the H*W positions, as a residual branch.

    x: [N x C x H x W] -> [N x C x H x W].
    """

    def __init__(self, channels: int, num_heads: int, groups: int):
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_init(nn.Conv2d(channels, channels, 1))  # starts as identity, like ResBlock

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each [N x heads x HW x C/heads]
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class UNetBlock(nn.Module):
    """A ResBlock, followed by self-attention at the resolutions that ask for it."""

    def __init__(self, in_ch, out_ch, emb_dim, dropout, groups, num_heads, attention: bool):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, dropout, groups)
        self.attn = SelfAttention(out_ch, num_heads, groups) if attention else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.attn(self.res(x, emb))


class Upsample(nn.Module):
    """Nearest-neighbour resize to the matching skip's size, then a 3x3 conv.

    Resizing to an explicit size rather than by 2 undoes odd-sized downsampling (7 -> 4 -> 7).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


def _check(image_size, in_channels, base_channels, channel_mult, num_res_blocks,
           attention_resolutions, num_heads, dropout, out_channels, groups):
    """Raise ConfigError, naming the config key, for any value the network cannot be built with."""
    positive = {"data.image_size": image_size, "data.channels": in_channels,
                "model.base_channels": base_channels, "model.num_res_blocks": num_res_blocks,
                "model.num_heads": num_heads, "model.groups": groups,
                "model.out_channels": in_channels if out_channels is None else out_channels}
    positive |= {f"model.channel_mult[{i}]": m for i, m in enumerate(channel_mult)}
    positive |= {f"model.attention_resolutions[{i}]": r for i, r in enumerate(attention_resolutions)}
    check_positive(positive)
    if not channel_mult:
        raise ConfigError("model.channel_mult=[] is empty; allowed: a list with one entry per level")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout={dropout} is invalid; allowed: 0 <= dropout < 1")
    if 2 ** (len(channel_mult) - 1) > image_size:
        raise ConfigError(
            f"model.channel_mult has {len(channel_mult)} levels, too many to halve "
            f"data.image_size={image_size}; allowed: at most {image_size.bit_length()} levels")
    for ch in sorted({base_channels * m for m in channel_mult} | {base_channels}):
        if ch % groups:
            raise ConfigError(
                f"model.groups={groups} does not divide {ch} channels (model.base_channels * "
                f"model.channel_mult); allowed: {divisors(base_channels)}")
        # Attention may land on any level (and always runs in the middle), so check them all.
        if ch % num_heads:
            raise ConfigError(
                f"model.num_heads={num_heads} does not divide {ch} channels (model.base_channels * "
                f"model.channel_mult); allowed: {divisors(base_channels)}")


class UNet(nn.Module):
    """DDPM/ADM U-Net: x [N x C x H x W], t [N] noise level (int or float), y [N] int64 or None -> [N x out_channels x H x W].

    attention_resolutions are in pixels: attention runs at every level whose feature map is that
    many pixels wide (given image_size), plus always in the middle block. Entries that match no
    level are ignored, so one preset serves 8x8 up to 32x32 data.
    """

    def __init__(self, in_channels: int, image_size: int, *, base_channels: int = 64,
                 channel_mult: Sequence[int] = (1, 2, 2), num_res_blocks: int = 2,
                 attention_resolutions: Sequence[int] = (16,), num_heads: int = 4,
                 dropout: float = 0.0, num_classes: int | None = None,
                 out_channels: int | None = None, groups: int = 32):
        super().__init__()
        channel_mult, attention_resolutions = tuple(channel_mult), tuple(attention_resolutions)
        _check(image_size, in_channels, base_channels, channel_mult, num_res_blocks,
               attention_resolutions, num_heads, dropout, out_channels, groups)
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.out_channels = in_channels if out_channels is None else out_channels

        emb_dim = 4 * base_channels  # ADM's width for the conditioning vector
        self.cond = ConditionEmbedding(emb_dim, num_classes)

        def block(cin, cout, res, attention=None):
            attention = res in attention_resolutions if attention is None else attention
            return UNetBlock(cin, cout, emb_dim, dropout, groups, num_heads, attention)

        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        skip_chs, ch, res, level_res = [base_channels], base_channels, image_size, []
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for level, mult in enumerate(channel_mult):
            level_res.append(res)
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(block(ch, base_channels * mult, res))
                ch = base_channels * mult
                skip_chs.append(ch)
            self.down.append(blocks)
            if level < len(channel_mult) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                res = (res + 1) // 2  # what a stride-2, pad-1, 3x3 conv gives for odd sizes too
                skip_chs.append(ch)

        self.mid = block(ch, ch, res, attention=True)
        self.mid_out = ResBlock(ch, ch, emb_dim, dropout, groups)

        # Up path, coarsest level first; each block eats one skip, in reverse order of the down path.
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(channel_mult))):
            if level < len(channel_mult) - 1:
                self.upsample.append(Upsample(ch))
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(block(ch + skip_chs.pop(), base_channels * channel_mult[level],
                                    level_res[level]))
                ch = base_channels * channel_mult[level]
            self.up.append(blocks)

        # Zero output conv: the untrained net outputs exactly 0, a neutral first guess for
        # eps / v / x0 targets alike, and training starts from a stable, small loss gradient.
        self.out = nn.Sequential(nn.GroupNorm(groups, ch), nn.SiLU(),
                                 zero_init(nn.Conv2d(ch, self.out_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.cond(t, y)
        h = self.stem(x)
        skips = [h]
        for level, blocks in enumerate(self.down):
            for blk in blocks:
                h = blk(h, emb)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                skips.append(h)
        h = self.mid_out(self.mid(h, emb), emb)
        for level, blocks in enumerate(self.up):
            if level > 0:
                h = self.upsample[level - 1](h, size=skips[-1].shape[-2:])
            for blk in blocks:
                h = blk(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)
