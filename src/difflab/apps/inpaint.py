"""Inpainting with RePaint (Lugmayr et al. 2022, arXiv:2201.09865): the unconditional reverse process, with the
known pixels replaced after every step by the forward-noised observation, and resampling ("jump back j steps,
r times") so the generated region harmonises with what is known."""

from dataclasses import dataclass

import torch

from difflab.apps.masks import CentreBox
from difflab.apps.operators import blur_fill, mean_fill, psnr
from difflab.apps.result import Observation, Result
from difflab.diffusion.forward import diffuse, renoise
from difflab.diffusion.schedules import alpha_sigma_at
from difflab.errors import ConfigError
from difflab.sampling.grids import respaced_timesteps
from difflab.sampling.noise import make_noise
from difflab.sampling.steps import ddim_step, predict


def repaint_path(steps: int, jump_length: int, resample: int) -> list[int]:
    """Indices into a grid of `steps` timesteps (0 = noisiest): down one at a time; at every multiple of
    jump_length, back up jump_length indices, resample - 1 times (RePaint's Algorithm 1 schedule)."""
    jumps = {k: resample - 1 for k in range(jump_length, steps - 1, jump_length)}
    path, i = [0], 0
    while i < steps - 1:
        i += 1
        path.append(i)
        if jumps.get(i, 0) > 0:
            jumps[i] -= 1
            for _ in range(jump_length):
                i -= 1
                path.append(i)
    return path


@torch.no_grad()
def repaint(denoiser, known_image: torch.Tensor, known: torch.Tensor, noise, *, steps: int = 50,
            jump_length: int = 5, resample: int = 5, eta: float = 1.0, temperature: float = 1.0,
            clip_x0: bool = True, progress: bool = False) -> torch.Tensor:
    """Fill the pixels where `known` [N x 1 x H x W] is False; known pixels of the output equal known_image's.

    Steps run on a respaced grid of `steps` timesteps with the DDPM (eta = 1) or DDIM (eta = 0) update;
    network evaluations = steps + (steps // jump_length - 1) * jump_length * (resample - 1), roughly steps * resample.
    """
    from tqdm.auto import tqdm

    abar = denoiser.alphas_cumprod.double().cpu()
    grid = [int(t) for t in respaced_timesteps(denoiser.timesteps, steps)]
    path = repaint_path(steps, jump_length, resample)
    mask = known.to(known_image.device).expand_as(known_image)

    def keep_known(x, t):
        if t < 0:
            return torch.where(mask, known_image, x)
        observed = diffuse(known_image, noise(known_image.shape[1:]), *alpha_sigma_at(abar, t))
        return torch.where(mask, observed, x)

    x = temperature * noise(known_image.shape[1:])
    for a, b in tqdm(list(zip(path, path[1:])), desc="repaint", disable=not progress, leave=False):
        t, s = grid[a], grid[b]
        if b > a:  # one reverse step t -> s < t
            x0, eps = predict(denoiser, x, t, abar, clip_x0)
            x = keep_known(ddim_step(x0, eps, float(abar[t]), float(abar[s]), eta, noise, temperature), s)
        else:  # jump back to the noisier s
            x = renoise(x, temperature * noise(x.shape[1:]), float(abar[t]), float(abar[s]))
    x0, _ = predict(denoiser, x, grid[-1], abar, clip_x0)
    return keep_known(x0, -1)


@dataclass(frozen=True)
class Inpaint:
    """task=inpaint: fill the mask's hole (conf/task/mask: centre_box | half | strokes | file)."""

    mask: object = CentreBox()
    steps: int = 50
    jump_length: int = 5
    resample: int = 5
    eta: float = 1.0

    def __post_init__(self):
        if not (isinstance(self.steps, int) and self.steps >= 2):
            raise ConfigError(f"task.steps={self.steps} is invalid; allowed: an integer >= 2")
        if not (isinstance(self.jump_length, int) and 1 <= self.jump_length < self.steps):
            raise ConfigError(f"task.jump_length={self.jump_length} is invalid; allowed: 1 to task.steps - 1")
        if not (isinstance(self.resample, int) and self.resample >= 1):
            raise ConfigError(f"task.resample={self.resample} is invalid; allowed: an integer >= 1 (1 = no resampling)")

    def check(self, module, obs: Observation) -> None:
        if self.steps > module.timesteps:
            raise ConfigError(f"task.steps={self.steps} is invalid; allowed: 2 to schedule.timesteps={module.timesteps}")
        self.known(obs)  # a mask file of the wrong size fails here, before sampling

    def known(self, obs: Observation) -> torch.Tensor:
        return self.mask(len(obs.x), obs.x.shape[-1], obs.seed).to(obs.x.device)

    def __call__(self, module, obs: Observation, temperature: float = 1.0, progress: bool = False) -> Result:
        known = self.known(obs)
        source = obs.x if obs.reference is None else obs.reference
        noise = make_noise(len(source), obs.seed, obs.start_index, source.device)
        out = repaint(module.denoiser(), source, known, noise, steps=self.steps, jump_length=self.jump_length,
                      resample=self.resample, eta=self.eta, temperature=temperature, clip_x0=module.sampler.clip_x0,
                      progress=progress)
        shown = torch.where(known.expand_as(source), source, torch.zeros_like(source))  # holes mid-grey: visible on black
        columns = {"input": shown, "result": out, "mean_fill": mean_fill(source, known),
                   "blur_fill": blur_fill(source, known)}
        result = Result(columns, outputs=["result", "mean_fill", "blur_fill"],
                        metrics={"hole_fraction": float((~known).float().mean())})
        if obs.reference is not None:
            columns["reference"] = obs.reference
            for name in result.outputs:
                value = psnr(columns[name], obs.reference, where=~known)
                result.scores[f"psnr_masked_{name}"] = value
            result.scores["known_max_abs_change"] = ((out - source).abs() * known).flatten(1).max(1).values
        return result
