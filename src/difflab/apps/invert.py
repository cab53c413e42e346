"""Inversion: encode images into the noise the deterministic DDIM decoder maps back to them, and decode again.
Plain DDIM inversion is approximate; exact inversion solves each step (difflab.sampling.inversion)."""

from dataclasses import dataclass

import torch

from difflab.apps.operators import psnr
from difflab.apps.result import Observation, Result
from difflab.errors import ConfigError
from difflab.sampling.inversion import ddim_decode, ddim_invert, exact_invert


@dataclass(frozen=True)
class Invert:
    """task=invert. steps: DDIM grid points; start: the code's noise level as a fraction of the T steps (the
    cosine schedule's last step has alpha ~ 5e-5, where unclamped DDIM amplifies errors: 0.98 stays clear);
    method: exact | ddim | both; iterations / tol: of the exact per-step solver."""

    steps: int = 50
    start: float = 0.98
    method: str = "both"
    iterations: int = 50
    tol: float = 1e-4

    def __post_init__(self):
        if self.method not in ("exact", "ddim", "both"):
            raise ConfigError(f"task.method={self.method!r} is invalid; allowed: exact, ddim, both")
        if not 0 < self.start <= 1:
            raise ConfigError(f"task.start={self.start} is invalid; allowed: a fraction 0 < start <= 1 of the T steps")

    def start_timestep(self, T: int) -> int:
        return max(0, min(T - 1, round(self.start * (T - 1))))

    def check(self, module, obs: Observation) -> None:
        if not (isinstance(self.steps, int) and 1 <= self.steps <= module.timesteps):
            raise ConfigError(f"task.steps={self.steps} is invalid; allowed: 1 to schedule.timesteps={module.timesteps}")

    def __call__(self, module, obs: Observation, temperature: float = 1.0, progress: bool = False) -> Result:
        x = obs.x if obs.reference is None else obs.reference
        denoiser, start = module.denoiser(), self.start_timestep(module.timesteps)
        methods = ["ddim", "exact"] if self.method == "both" else [self.method]
        result = Result({"input": x}, metrics={"start_timestep": start, "steps": self.steps})
        for name in methods:
            info = {}
            if name == "exact":
                code = exact_invert(denoiser, x, self.steps, iterations=self.iterations, tol=self.tol, start=start,
                                    info=info)
                result.scores["exact_worst_residual"] = torch.full((len(x),), float(info.get("residual", 0.0)))
            else:
                code = ddim_invert(denoiser, x, self.steps, start=start)
            # temperature scales the code before decoding: < 1 pulls the image toward the typical
            back = ddim_decode(denoiser, temperature * code, self.steps, start=start)
            result.columns[f"code_{name}"] = code.clamp(-3, 3) / 3
            result.columns[f"reconstruction_{name}"] = back.clamp(-1, 1)
            result.scores[f"psnr_{name}"] = psnr(back, x)
            result.scores[f"code_mean_{name}"] = code.flatten(1).mean(1)
            result.scores[f"code_std_{name}"] = code.flatten(1).std(1)
        return result
