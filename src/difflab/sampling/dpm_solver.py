"""DPM-Solver++ over a denoiser D(x_t, t) -> (x0_hat, eps_hat): the probability-flow ODE and, with eta > 0, the
reverse SDE, as one exponential integrator.

It runs on a grid of integer timesteps t_0 = start > ... > t_{M-1} = 0 (the network embeds integer t; grids.py)
and returns x0_hat at t_{M-1}. The temperature tau scales the initial x_T and any noise injected (eta > 0).
Notation: abar_t the cumulative alphas, alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), lambda_t =
log(alpha_t / sigma_t).

DPM-Solver++(2M) (Lu et al. 2022, arXiv:2211.01095, Algorithm 2) is DDIM's deterministic step fed a better estimate
than the denoiser's output at t alone: the update x_{t_i} = (sigma_{t_i} / sigma_{t_{i-1}}) x_{t_{i-1}} - alpha_{t_i}
(e^{-h_i} - 1) D_i is DDIM's step from x0 = D_i, with h_i = lambda_{t_i} - lambda_{t_{i-1}}, r_i = h_{i-1} / h_i and
the multistep estimate D_i = (1 + 1/(2 r_i)) x0_hat(t_{i-1}) - 1/(2 r_i) x0_hat(t_{i-2}) (x0_hat(t_0) on the first
step). dpmpp_step writes it (and 3M, and the SDE variants with eta > 0) as one exponential integrator; with
`corrector` each step is retaken once the network has seen its end point (UniPC-style).
"""

import math
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from difflab.diffusion.schedules import alpha_sigma_of
from difflab.errors import ConfigError
from difflab.sampling.base import SpacedSampler
from difflab.sampling.grids import log_snr
from difflab.sampling.steps import predict


def exponential_weights(nodes: list[float], h: float, a: float) -> list[float]:
    """Weights w_j with sum_j w_j P(u_j) = int_0^h a e^{-a (h - u)} P(u) du for every polynomial P of degree
    < len(nodes) (distinct nodes u_j): the moments m_k = int_0^h a e^{-a(h-u)} u^k du (m_0 = 1 - e^{-a h},
    m_k = h^k - (k / a) m_{k-1} by parts) against the Vandermonde matrix, in u / h for conditioning."""
    n = len(nodes)
    moments = [-math.expm1(-a * h)]
    for k in range(1, n):
        moments.append(h**k - k / a * moments[-1])
    v = torch.tensor([[(u / h) ** k for u in nodes] for k in range(n)], dtype=torch.float64)
    m = torch.tensor([moments[k] / h**k for k in range(n)], dtype=torch.float64)
    return torch.linalg.solve(v, m).tolist()


def dpmpp_step(x: torch.Tensor, points: list, lam_t: float, lam_s: float, abar_t: float, abar_s: float,
               eta: float = 0.0, z: torch.Tensor | None = None, exact: bool = False) -> torch.Tensor:
    """One DPM-Solver++ step t -> s from x = x_t: the exponential integrator of the reverse SDE with extra noise eta,

        x_s = (sigma_s / sigma_t) e^{-eta h} x_t + alpha_s int_0^h a e^{-a (h - u)} P(u) du
              + sigma_s sqrt(1 - e^{-2 eta h}) z,                a = 1 + eta, h = lambda_s - lambda_t,

    with P the polynomial in u = lambda - lambda_t through the x0 estimates `points` = [(lambda_j, x0_hat_j)]
    (their number is the order) and z the step's noise (temperature included; needed when eta > 0). eta = 0 is the
    probability-flow ODE (DPM-Solver++, Lu et al. 2022, arXiv:2211.01095), eta = 1 the reverse SDE
    (SDE-DPM-Solver++: its noise is DDPM's posterior noise), eta > 1 adds Langevin-like churn. The integral is
    exact (exponential_weights) except for two points without `exact`: DPM-Solver++(2M)'s Algorithm 2, which weights
    the divided difference by h/2 times the zeroth weight. A corrector passes the new point at lambda_s as well.
    """
    h = lam_s - lam_t
    a = 1 + eta
    if len(points) == 2 and not exact:
        (lam_0, d0), (lam_1, d1) = points
        w0 = -math.expm1(-a * h)
        drift = w0 * d0 + (h * w0 / 2) * (d0 - d1) / (lam_0 - lam_1)
    else:
        weights = exponential_weights([lam_j - lam_t for lam_j, _ in points], h, a)
        drift = sum(w * d for w, (_, d) in zip(weights, points))
    (_, sigma_t), (alpha_s, sigma_s) = alpha_sigma_of(abar_t), alpha_sigma_of(abar_s)
    x = (sigma_s / sigma_t * math.exp(-eta * h)) * x + alpha_s * drift
    if eta > 0:
        x = x + (sigma_s * (-math.expm1(-2 * eta * h)) ** 0.5) * z
    return x


@torch.no_grad()
def sample_dpmpp(denoiser: Callable, x: torch.Tensor, timesteps: torch.Tensor, callback: Callable | None = None,
                 progress: bool = False, clip_x0: bool = False, project: Callable | None = None, order: int = 2,
                 eta: float = 0.0, noise: Callable | None = None, temperature: float = 1.0,
                 eta_sigma_min: float = 0.0, corrector: bool = False) -> torch.Tensor:
    """DPM-Solver++ multistep of `order` (1-3) from x = x_{timesteps[0]} [N x C x H x W] -> x0 [N x C x H x W]:
    one network evaluation per grid point; the first steps use the order their history allows. callback(i, t, x_t,
    x0_hat) and project(t_next, x) as in ancestral.sample_reverse. eta > 0 injects noise(shape) scaled by
    temperature (dpmpp_step) on the steps from a point whose Karras sigma = exp(-lambda_t) is >= eta_sigma_min;
    the steps below it are the ODE's (eta_sigma_min = 0: every step; cf. Karras et al.'s S_tmin).

    corrector: once the network has been evaluated at the new point s, the step t -> s is retaken from x_t with the
    same noise and the polynomial through x0_hat(s) as well (order + 1 points, integrated exactly): the free
    corrector of UniPC (Zhao et al. 2023, arXiv:2302.04867) and, with noise, SA-Solver (Xue et al. 2023,
    arXiv:2309.05019). The evaluation at s is kept for later steps (no extra evaluation), so callback sees the
    corrected x_s beside x0_hat of the predicted one; the last point is not corrected (its x0_hat is the output).
    """
    abar = denoiser.alphas_cumprod.double().cpu()
    lam = log_snr(abar)
    ts = [int(t) for t in timesteps]
    history = []  # (lambda, x0_hat) at the previous grid points, newest first
    step = None  # the last step's (x_t, points, lambda_t, abar_t, eta, z), for the corrector
    for i, t in enumerate(tqdm(ts, desc=f"dpm++({order}m)", disable=not progress, leave=False)):
        x0, _ = predict(denoiser, x, t, abar, clip_x0)
        if corrector and step is not None and i < len(ts) - 1:
            x_prev, points, lam_prev, abar_prev, eta_prev, z = step
            x = dpmpp_step(x_prev, [(float(lam[t]), x0)] + points, lam_prev, float(lam[t]), abar_prev, float(abar[t]),
                           eta_prev, z, exact=True)
            if project is not None:
                x = project(t, x)
        if callback is not None:
            callback(i, t, x, x0)
        if i == len(ts) - 1:
            return x0 if project is None else project(-1, x0)
        s = ts[i + 1]
        history = [(float(lam[t]), x0)] + history[: order - 1]
        eta_here = eta if math.exp(-float(lam[t])) >= eta_sigma_min else 0.0
        z = temperature * noise(x.shape[1:], x.dtype) if eta_here > 0 else None
        step = (x, history, float(lam[t]), float(abar[t]), eta_here, z)
        x = dpmpp_step(x, history, float(lam[t]), float(lam[s]), float(abar[t]), float(abar[s]), eta_here, z)
        if project is not None:
            x = project(s, x)
    return x


@dataclass(frozen=True)
class DPMSolverPP(SpacedSampler):
    """DPM-Solver++ multistep (Lu et al. 2022): `steps` grid points = network evaluations, as for DDIM.

    order: 2 (DPM-Solver++(2M)) or 3 (3M; 1 = DDIM's step from x0_hat). eta: 0 = the probability-flow ODE; 1 = the
    reverse SDE (SDE-DPM-Solver++, noise as DDPM's); between 0 and 1 less noise, above 1 more (dpmpp_step).
    eta_sigma_min: noise only on steps from Karras sigma >= this, ODE steps below (0 = SDE throughout): the noise
    corrects the large errors of high-noise steps, while at low noise exact ODE steps do better (BENCHMARKS.md
    compares the settings).
    corrector: retake each step with the network's output at its end (UniPC / SA-Solver style; sample_dpmpp), at
    no extra network evaluation.
    """

    steps: int | None = 20
    order: int = 2
    eta: float = 0.0
    eta_sigma_min: float = 0.0
    corrector: bool = False
    solve = staticmethod(sample_dpmpp)

    def __post_init__(self):
        super().__post_init__()
        if self.order not in (1, 2, 3) or isinstance(self.order, bool):
            raise ConfigError(f"sampler.order={self.order} is invalid; allowed: 1, 2 or 3")
        if not isinstance(self.corrector, bool):
            raise ConfigError(f"sampler.corrector={self.corrector!r} is invalid; allowed: true or false")
        if not (isinstance(self.eta, (int, float)) and 0 <= self.eta <= 10):
            raise ConfigError(f"sampler.eta={self.eta} is invalid; allowed: 0 <= eta <= 10 (0 = ODE, 1 = SDE)")
        if not (isinstance(self.eta_sigma_min, (int, float)) and self.eta_sigma_min >= 0):
            raise ConfigError(f"sampler.eta_sigma_min={self.eta_sigma_min} is invalid; allowed: a number >= 0 "
                              "(0 = noise on every step)")

    def solver_options(self, noise, temperature) -> dict:
        options = {"order": self.order, "corrector": self.corrector}
        if self.eta == 0:
            return options
        return {**options, "eta": self.eta, "noise": noise, "temperature": temperature,
                "eta_sigma_min": self.eta_sigma_min}
