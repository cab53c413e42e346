"""The Hugging Face diffusers contestant: a UNet2DModel shaped like difflab's U-Net config, the training step of
diffusers' examples/unconditional_image_generation/train_unconditional.py, and the DDIMPipeline sampling loop.

diffusers is the optional `diffusers` extra (pip install -e '.[diffusers]'); `available()` says whether it is here.
Everything is built from configs in code: nothing is fetched from the Hub.
"""

import importlib.util

import torch
import torch.nn.functional as F


# The memory format diffusers' DDIM loop is timed in (at its default, float32, and under autocast): the faster of
# the two for UNet2DModel here, on 2 CPU cores (28x28 U-Net, batch 32): channels-last 1.6-1.9x contiguous in
# float32, 1.6x under bf16 autocast. Not measured on a GPU.
SAMPLE_FORMAT = torch.channels_last


def available() -> bool:
    return importlib.util.find_spec("diffusers") is not None


def peer_unet(model_cfg, channels: int, size: int):
    """A UNet2DModel with difflab's U-Net layout: one level per channel_mult entry (widths base * mult), the same
    residual blocks per level (one more on the way up, in both), attention at the same resolutions and in the
    middle, the same GroupNorm groups and ADM's scale-shift conditioning. The parameter counts differ by a few
    per cent (time embedding and attention projections are laid out differently): the tables print both."""
    from diffusers import UNet2DModel

    widths = [model_cfg.base_channels * m for m in model_cfg.channel_mult]
    resolutions, res = [], size
    for _ in widths:
        resolutions.append(res)
        res = (res + 1) // 2
    attention = [r in model_cfg.attention_resolutions for r in resolutions]
    return UNet2DModel(
        sample_size=size, in_channels=channels, out_channels=channels, block_out_channels=tuple(widths),
        layers_per_block=model_cfg.num_res_blocks,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        norm_num_groups=model_cfg.groups, attention_head_dim=widths[-1] // model_cfg.num_heads,
        resnet_time_scale_shift="scale_shift", dropout=model_cfg.dropout,
    )


def ddpm_scheduler(beta_schedule: str = "linear"):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule)


def train_step(unet, scheduler, optimizer, autocast, clip: float = 1.0):
    """step(x0 [N x C x H x W]) -> loss: train_unconditional.py's step (epsilon target, grad-norm clip 1.0)."""
    T = scheduler.config.num_train_timesteps

    def step(x0: torch.Tensor) -> torch.Tensor:
        noise = torch.randn_like(x0)
        t = torch.randint(0, T, (x0.shape[0],), device=x0.device)
        noisy = scheduler.add_noise(x0, noise, t)
        with autocast():
            pred = unet(noisy, t).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


@torch.no_grad()
def ddim_sample(unet, train_scheduler, num_samples: int, steps: int, shape, generator: torch.Generator,
                autocast) -> torch.Tensor:
    """DDIMPipeline's loop (eta 0, x0 clipped): [num_samples x C x H x W] in [-1, 1]; `steps` network evaluations.

    The autocast context holds the whole loop, as `with torch.autocast(...): pipeline(...)` does: autocast then casts
    each weight once for the loop, as difflab's sampling does (precision.weight_cache), not at every step."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(train_scheduler.config)
    scheduler.set_timesteps(steps)
    device = next(unet.parameters()).device
    x = torch.randn((num_samples, *shape), generator=generator, device=device)
    with autocast():
        for t in scheduler.timesteps:
            out = unet(x, t).sample
            x = scheduler.step(out.float(), t, x).prev_sample
    return x.clamp(-1, 1)
