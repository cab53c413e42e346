"""Denoising y = x + sigma n with the generative model: Tweedie's one-step posterior mean E[x | y] (Efron 2011;
the denoiser itself), and SDEdit (Meng et al. 2022, arXiv:2108.01073), which starts the reverse process at the
timestep whose noise level matches sigma and samples a clean image consistent with y."""

from dataclasses import dataclass

import torch

from difflab.apps.operators import blur, estimate_noise_std, psnr
from difflab.apps.result import Observation, Result
from difflab.diffusion.forward import timestep_for_noise
from difflab.diffusion.schedules import alpha_sigma
from difflab.errors import ConfigError
from difflab.sampling.noise import make_noise

BLUR_STDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0)  # the baseline's search grid (pixels)


def as_noisy_state(y: torch.Tensor, sigma: torch.Tensor, alphas_cumprod: torch.Tensor):
    """(x_t [N x C x H x W], t [N]): y = x0 + sigma n scaled by alpha_t, where sigma_t / alpha_t = sigma."""
    t = torch.tensor([timestep_for_noise(alphas_cumprod, float(s)) for s in sigma], device=y.device)
    alpha = alpha_sigma(alphas_cumprod, t, y)[0]
    return alpha * y, t


def tweedie(denoiser, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The one-step minimum-mean-squared-error estimate E[x0 | y] [N x C x H x W]."""
    x_t, t = as_noisy_state(y, sigma, denoiser.alphas_cumprod)
    return denoiser(x_t, t)[0]


def sdedit(denoiser, sampler, y: torch.Tensor, sigma: torch.Tensor, noise, temperature: float = 1.0,
           progress: bool = False) -> torch.Tensor:
    """A sample of the reverse process started from y at the matching timestep (images grouped by timestep)."""
    x_t, t = as_noisy_state(y, sigma, denoiser.alphas_cumprod)
    out = torch.empty_like(y)
    for start in t.unique().tolist():
        rows = (t == start).nonzero().flatten()
        out[rows] = sampler(denoiser, lambda shape, dtype=torch.float32: noise(shape, dtype)[rows], y.shape[1:],
                            temperature, progress=progress, x=x_t[rows], start=int(start))
    return out


def best_blur(noisy: torch.Tensor, reference: torch.Tensor) -> tuple[float, torch.Tensor]:
    """The Gaussian blur (std from BLUR_STDS) with the best mean PSNR on these very images: an oracle-tuned
    baseline, which favours the baseline."""
    scored = [(float(psnr(blur(noisy, s), reference).mean()), s) for s in BLUR_STDS]
    _, std = max(scored)
    return std, blur(noisy, std)


@dataclass(frozen=True)
class Denoise:
    """task=denoise: sigma (on the [-1, 1] scale) of the Gaussian noise added to clean inputs, or of the noise
    already in degraded inputs; null estimates it per image. sampler: SDEdit's reverse process (null = the
    checkpoint's)."""

    sigma: float | None = 0.2
    sampler: object = None

    def __post_init__(self):
        if self.sigma is not None and not (isinstance(self.sigma, (int, float)) and self.sigma >= 0):
            raise ConfigError(f"task.sigma={self.sigma} is invalid; allowed: a number >= 0, or null to estimate it")

    def check(self, module, obs: Observation) -> None:
        if self.sigma is None and obs.reference is not None:
            raise ConfigError("task.sigma=null (estimate) needs noisy inputs (degraded=true); with clean inputs "
                              "give the sigma of the noise to add, e.g. task.sigma=0.2")

    def __call__(self, module, obs: Observation, temperature: float = 1.0, progress: bool = False) -> Result:
        noise = make_noise(len(obs.x), obs.seed, obs.start_index, obs.x.device)
        if obs.reference is not None:  # noise added here, from its own seeded stream
            added = make_noise(len(obs.x), obs.seed + 7919, obs.start_index, obs.x.device)
            y = obs.reference + self.sigma * added(obs.x.shape[1:])
        else:
            y = obs.x
        estimated = estimate_noise_std(y)
        sigma = estimated if self.sigma is None else torch.full((len(y),), float(self.sigma), device=y.device)
        denoiser = module.denoiser()
        one_step = tweedie(denoiser, y, sigma).clamp(-1, 1)
        sampled = sdedit(denoiser, self.sampler or module.sampler, y, sigma, noise, temperature, progress).clamp(-1, 1)
        columns = {"input": y, "tweedie": one_step, "sdedit": sampled}
        result = Result(columns, outputs=["tweedie", "sdedit"], scores={"sigma_estimated": estimated},
                        metrics={"sigma": self.sigma if self.sigma is not None else float(sigma.mean()),
                                 "sigma_estimated": float(estimated.mean())})
        if obs.reference is not None:
            std, columns["blur"] = best_blur(y, obs.reference)
            result.metrics["blur_std"] = std
            result.outputs.append("blur")
            columns["reference"] = obs.reference
            for name in ("input", "tweedie", "sdedit", "blur"):
                value = psnr(columns[name], obs.reference)
                result.scores[f"psnr_{name}"] = value
        return result
