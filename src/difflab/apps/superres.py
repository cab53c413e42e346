"""Super-resolution with the unconditional model by ILVR (Choi et al. 2021, arXiv:2108.02938): after every
reverse step the state's low frequencies, up(down(x_t)), are swapped for those of the noised low-resolution
input, so the output's downsampling equals the input while the model invents the detail."""

from dataclasses import dataclass

import torch

from difflab.apps.operators import bicubic, downsample, psnr, upsample
from difflab.apps.result import Observation, Result
from difflab.diffusion.forward import diffuse
from difflab.diffusion.schedules import alpha_sigma_at
from difflab.errors import ConfigError
from difflab.sampling.noise import make_noise


def ilvr_projection(low: torch.Tensor, factor: int, alphas_cumprod: torch.Tensor, noise, clip: bool = False):
    """project(t, x) for the samplers: x - up(down(x)) + up(y_t), y_t the low-res image noised to level t.

    down(x_t) of a clean image with down(x0) = low is alpha low + sigma down(eps): its noise is the downsampled
    full-resolution noise, which `noise` supplies; at t = -1 (the output) y is the input itself (and with `clip`
    the output is also kept in the data range [-1, 1])."""
    abar = alphas_cumprod.double().cpu()

    def project(t: int, x: torch.Tensor) -> torch.Tensor:
        if t < 0:
            return consistent_in_range(x, low, factor) if clip else replace_low(x, low, factor)
        eps = downsample(noise(x.shape[1:], x.dtype), factor)
        return replace_low(x, diffuse(low, eps, *alpha_sigma_at(abar, t)), factor)

    return project


def replace_low(x: torch.Tensor, low: torch.Tensor, factor: int) -> torch.Tensor:
    """x with its block means swapped for `low`: downsample(result) = low exactly."""
    return x - upsample(downsample(x, factor), factor) + upsample(low, factor)


def consistent_in_range(x: torch.Tensor, low: torch.Tensor, factor: int, iterations: int = 100) -> torch.Tensor:
    """The output both in [-1, 1] and downsampling to `low`, by alternating projections onto the two convex sets
    (they meet: upsample(low) lies in both). Clamping alone after replace_low would break the consistency."""
    for _ in range(iterations):
        x = replace_low(x, low, factor).clamp(-1, 1)
    return x


@dataclass(frozen=True)
class SuperResolution:
    """task=superres: enlarge by `factor` (2, 4, ... dividing the model's image size); sampler: the reverse
    process used (null = the checkpoint's); with clean inputs (degraded=false) they are area-downsampled first."""

    factor: int = 2
    sampler: object = None

    def __post_init__(self):
        if not (isinstance(self.factor, int) and self.factor >= 2):
            raise ConfigError(f"task.factor={self.factor} is invalid; allowed: an integer >= 2")

    def observed_shape(self, image_shape) -> tuple[int, int, int]:
        """The low-resolution input's shape [C x H/f x W/f] for a model making image_shape."""
        c, h, w = image_shape
        if h % self.factor or w % self.factor:
            allowed = [f for f in range(2, h + 1) if h % f == 0 and w % f == 0]
            raise ConfigError(f"task.factor={self.factor} does not divide the model's image size {w}x{h}; "
                              f"allowed: {', '.join(map(str, allowed))}")
        return c, h // self.factor, w // self.factor

    def check(self, module, obs: Observation) -> None:
        self.observed_shape(tuple(module.image_shape))

    def low_resolution(self, obs: Observation) -> torch.Tensor:
        return downsample(obs.reference, self.factor) if obs.reference is not None else obs.x

    def __call__(self, module, obs: Observation, temperature: float = 1.0, progress: bool = False) -> Result:
        low = self.low_resolution(obs)
        n, shape = len(low), tuple(module.image_shape)
        noise = make_noise(n, obs.seed, obs.start_index, low.device)
        sampler = self.sampler or module.sampler
        project = ilvr_projection(low, self.factor, module.alphas_cumprod, noise, clip=True)
        out = sampler(module.denoiser(), noise, shape, temperature, progress=progress, project=project)
        columns = {"input": upsample(low, self.factor), "result": out, "bicubic": bicubic(low, self.factor)}
        consistency = (downsample(out, self.factor) - low).abs().flatten(1).mean(1)
        result = Result(columns, outputs=["result", "bicubic"], scores={"consistency_mae": consistency},
                        metrics={"factor": self.factor})
        if obs.reference is not None:
            columns["reference"] = obs.reference
            for name in result.outputs:
                value = psnr(columns[name], obs.reference)
                result.scores[f"psnr_{name}"] = value
        return result
