"""Sample-quality and likelihood metrics, computed the same way on one process or many.

Every rank feeds its own share of the real images and of the samples; torchmetrics sums the statistics over
ranks when `compute()` runs (which every rank must call). Sample i always comes from noise seeded by (seed, i),
so the sample set, and the metric, do not depend on the number of processes.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics import Metric, MeanMetric
from tqdm.auto import tqdm

from difflab.errors import ConfigError
from difflab.sampling.generate import check_num_samples


def shard(n: int, rank: int, world: int) -> range:
    """The contiguous share of indices 0..n-1 that `rank` of `world` processes handles."""
    return range(n * rank // world, n * (rank + 1) // world)


class FeatureStore(Metric):
    """Every generated image's features, gathered from all ranks in index order (the shards are contiguous)."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("features", default=[], dist_reduce_fx="cat")

    def update(self, features: torch.Tensor) -> None:
        self.features.append(features.float())

    def compute(self) -> torch.Tensor:
        f = self.features
        return torch.cat(f) if isinstance(f, list) else f


@dataclass(frozen=True)
class BitsPerDim:
    """Negative log-likelihood bound in bits/dim of real images (conf/metrics/nll.yaml).

    num_images: real images scored (null = the whole split); timesteps: null = every term of the bound, K = an
    unbiased estimate from K random timesteps per image; variance: the reverse-process variance (posterior | beta).
    """

    num_images: int | None = 1000
    timesteps: int | None = None
    variance: str = "posterior"


class Evaluator(nn.Module):
    """FID / KID (torchmetrics, `reset_real_features=False`: real statistics are computed once) and bits/dim.

    With `fid_bootstrap` = B > 0 the generated features are kept too: `compute` adds `fid_std` (bootstrap over the
    samples, B resamples) and `fid_features` holds them with the real statistics, for paired comparisons."""

    def __init__(self, features: nn.Module | None, num_samples: int, num_real: int, fid=None, kid=None,
                 nll: BitsPerDim | None = None, seed: int = 0, fid_bootstrap: int = 0):
        super().__init__()
        check_num_samples(num_samples, minimum=2, why="FID needs a covariance")
        self.features_name = getattr(features, "name", "custom")
        self.num_samples, self.num_real, self.seed, self.nll_config = num_samples, num_real, seed, nll
        self.metrics = nn.ModuleDict()
        if fid is not None:
            self.metrics["fid"] = fid(feature=features, reset_real_features=False)
        if kid is not None:
            size = min(kid.keywords.get("subset_size", 1000), num_samples, num_real)
            self.metrics["kid"] = kid(feature=features, reset_real_features=False, subset_size=size)
        self.nll = MeanMetric() if nll is not None else None
        self.has_real = False
        if fid_bootstrap and (fid is None or fid_bootstrap < 2):
            raise ConfigError(f"metrics.fid_bootstrap={fid_bootstrap} is invalid; allowed: 0 (off), or an integer >= 2 "
                              "with the fid metric")
        self.fid_bootstrap = fid_bootstrap
        self.feature_store = FeatureStore() if fid_bootstrap else None
        self.fid_features: dict | None = None  # set by compute() when fid_bootstrap > 0

    @property
    def sample_metrics(self) -> bool:
        return len(self.metrics) > 0

    def labels(self) -> dict[str, str]:
        """How each result is reported, e.g. fid -> 'FID-domain, 1000 samples'."""
        n = f"{self.num_samples} samples"
        out = {"fid": f"FID-{self.features_name}, {n}",
               "fid_std": f"FID-{self.features_name} (bootstrap std, {self.fid_bootstrap} resamples), {n}",
               "kid_mean": f"KID-{self.features_name} (mean), {n}",
               "kid_std": f"KID-{self.features_name} (std over subsets), {n}"}
        if self.nll_config is not None:
            t = "all timesteps" if self.nll_config.timesteps is None else f"{self.nll_config.timesteps} random timesteps"
            out["nll_bpd"] = f"NLL bound, bits/dim ({t})"
        return out

    @torch.no_grad()
    def update_real(self, images: torch.Tensor) -> None:
        """Feed real images [N x C x H x W] in [-1, 1] (this rank's share)."""
        for metric in self.metrics.values():
            metric.update(images, real=True)
        self.has_real = True

    @torch.no_grad()
    def update_fake(self, module, indices: range, sampler=None, temperature=1.0, batch_size=256, progress=False,
                    compile=None):
        """Draw samples indices.start .. indices.stop-1 with `module` (seeded per index) and feed them; `compile`
        as in sampling.generate."""
        if not self.sample_metrics or len(indices) == 0:
            return
        for lo in tqdm(range(indices.start, indices.stop, batch_size), desc="samples", disable=not progress):
            n = min(batch_size, indices.stop - lo)
            x = module.sample(n, sampler=sampler, temperature=temperature, seed=self.seed, start_index=lo,
                              batch_size=min(batch_size, len(indices)), compile=compile)
            self.update_images(x)

    @torch.no_grad()
    def update_images(self, images: torch.Tensor) -> None:
        """Feed generated (or restored) images [N x C x H x W] in [-1, 1] that were made elsewhere."""
        for metric in self.metrics.values():
            metric.update(images.to(metric.device), real=False)
        if self.feature_store is not None:
            fid = self.metrics["fid"]
            self.feature_store.update(fid.inception(images.to(fid.device)))

    @torch.no_grad()
    def update_nll(self, module, images: torch.Tensor, generator: torch.Generator, progress: bool = False) -> None:
        from difflab.diffusion.likelihood import bits_per_dim, to_8bit_grid
        from difflab.precision import weight_cache

        if self.nll is not None and len(images):
            cfg = self.nll_config
            images = to_8bit_grid(images)
            with weight_cache(module.device, module.autocast_dtype):
                bpd = bits_per_dim(module.denoiser(), images.to(module.device), generator=generator,
                                   timesteps=cfg.timesteps, variance=cfg.variance, progress=progress)
            self.nll.update(bpd)

    def _fid_spread(self) -> float:
        """Collective: gathers the generated features and the real statistics; bootstrap std of the FID."""
        from difflab.metrics.bootstrap import FrechetToReference, fid_interval

        fake = self.feature_store.compute().cpu()
        self.feature_store.reset()
        fid = self.metrics["fid"]
        with fid.sync_context():  # the real statistics summed over ranks
            real = FrechetToReference.from_sums(fid.real_features_sum.cpu(), fid.real_features_cov_sum.cpu(),
                                                fid.real_features_num_samples.item())
        self.fid_features = {"fake": fake, "real_mean": real.mean, "real_cov": real.cov, "seed": self.seed,
                             "features": self.features_name}
        return fid_interval(fake, real, self.fid_bootstrap, seed=self.seed).std

    def compute(self) -> dict[str, float]:
        """Collective: every rank must call it. Returns plain floats; resets the sample statistics."""
        out = {}
        if "fid" in self.metrics:
            out["fid"] = float(self.metrics["fid"].compute())
        if self.feature_store is not None:
            out["fid_std"] = self._fid_spread()
        if "kid" in self.metrics:
            with torch.random.fork_rng(devices=[]):  # KID's subsets are random: fix them, leave training's RNG alone
                torch.manual_seed(self.seed)
                mean, std = self.metrics["kid"].compute()
            out["kid_mean"], out["kid_std"] = float(mean), float(std)
        if self.nll is not None:
            out["nll_bpd"] = float(self.nll.compute())
            self.nll.reset()
        for metric in self.metrics.values():
            metric.reset()  # keeps the real features (reset_real_features=False)
        return out


def real_images(dataset, indices, batch_size: int = 256):
    """Batches [B x C x H x W] of the images (not labels) at `indices` of a dataset of (image, label) pairs."""
    indices = list(indices)
    for lo in range(0, len(indices), batch_size):
        yield torch.stack([dataset[i][0] for i in indices[lo : lo + batch_size]])


def build_evaluator(metrics_cfg, num_samples: int, num_real: int, seed: int = 0) -> Evaluator:
    """Instantiate the feature extractor and the metrics chosen in a `metrics` config node (conf/metrics/)."""
    from hydra.utils import instantiate

    names = [k for k in ("fid", "kid", "nll") if metrics_cfg.get(k) is not None]
    if not names:
        raise ConfigError("metrics=[] chooses no metric; allowed: any of fid, kid, nll (e.g. metrics=[fid,kid,nll])")
    sample_metrics = any(k in names for k in ("fid", "kid"))
    bootstrap = metrics_cfg.get("fid_bootstrap") or 0
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap == 1 or bootstrap < 0:
        raise ConfigError(f"metrics.fid_bootstrap={bootstrap} is invalid; allowed: 0 (off) or an integer >= 2")
    features = instantiate(metrics_cfg.features) if sample_metrics else None
    return Evaluator(
        features, num_samples=num_samples, num_real=num_real, seed=seed,
        fid=instantiate(metrics_cfg.fid) if "fid" in names else None,
        kid=instantiate(metrics_cfg.kid) if "kid" in names else None,
        nll=instantiate(metrics_cfg.nll) if "nll" in names else None,
        fid_bootstrap=bootstrap if "fid" in names else 0,
    )
