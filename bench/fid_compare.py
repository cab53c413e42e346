"""Compare evaluate runs by FID with error bars: each run's FID and bootstrap spread, its ratio to the first run,
and its difference to the first run with a paired bootstrap interval (sample i of every run came from the same noise
seed, so the same rows are drawn); and each run's FID_inf (the FID extrapolated to infinitely many samples,
metrics/fid_infinity.py) with its ratio to the first run's: near the floor the finite-sample bias (~0.7 FID-domain at
1024 samples) makes FID ratios look closer to 1 than the models are.

    python src/evaluate.py ckpt=C sampler=ddpm sampler.steps=null 'metrics=[fid]' num_samples=1024 hydra.run.dir=A
    python src/evaluate.py ckpt=C sampler=dpmpp_2m_sde sampler.steps=20 'metrics=[fid]' num_samples=1024 hydra.run.dir=B
    python bench/fid_compare.py A B [--resamples 200] [--out compare.md]
    python bench/fid_compare.py A_seed0+A_seed1 B_seed0+B_seed1     # pooled: runs that differ only in seed

Reads RUN/fid_features.pt (written by evaluate with metrics.fid_bootstrap > 0, the default).
"""

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import hydra
import torch

from difflab.errors import ConfigError
from difflab.metrics.bootstrap import FrechetToReference, fid_interval, paired_fid_difference
from difflab.metrics.fid_infinity import fid_infinity


def load_one(path: Path) -> dict:
    f = path / "fid_features.pt" if path.is_dir() else path
    if not f.is_file():
        raise ConfigError(f"{path} holds no fid_features.pt; run src/evaluate.py with 'metrics=[fid]' there first")
    return torch.load(f, weights_only=True)


def normalized(key: str, value):
    """A sampler config with every field of its class (defaults filled in), so that runs written before an option
    existed pool with runs that name its default; other values as they are."""
    if key != "sampler" or not isinstance(value, dict) or "_target_" not in value:
        return value
    try:
        sampler = hydra.utils.instantiate(value)
    except Exception:  # a class that no longer exists or refuses the values: compare as written
        return value
    if not dataclasses.is_dataclass(sampler):
        return value
    return {"_target_": value["_target_"], **dataclasses.asdict(sampler)}


def load_run(spec) -> dict:
    """One evaluate run, or several joined by '+' (A+B): the same checkpoint and sampler with different seeds, their
    samples pooled into one larger set (seed becomes the tuple of seeds)."""
    if Path(spec).exists() or "+" not in str(spec):
        return load_one(Path(spec))
    parts = [load_one(Path(p)) for p in str(spec).split("+")]
    first = parts[0]
    seeds = [r["seed"] for r in parts]
    for r in parts[1:]:
        for key in ("sampler", "ckpt", "features"):
            if normalized(key, r.get(key)) != normalized(key, first.get(key)):
                raise ConfigError(f"cannot pool {spec}: its runs differ in {key} ({first.get(key)} vs {r.get(key)}); "
                                  "allowed: runs of one checkpoint and sampler with different seeds")
        if not torch.allclose(r["real_mean"], first["real_mean"]):
            raise ConfigError(f"cannot pool {spec}: its runs were measured against other real images")
    if len(set(seeds)) < len(seeds):
        raise ConfigError(f"cannot pool {spec}: seeds {seeds} repeat, which would repeat samples; allowed: distinct seeds")
    return {**first, "fake": torch.cat([r["fake"] for r in parts]), "seed": tuple(seeds)}


def describe(sampler: dict) -> str:
    name = str(sampler.get("_target_", "?")).rsplit(".", 1)[-1]
    extra = "".join(f" {k}={sampler[k]}" for k in ("order", "eta", "churn") if k in sampler)
    extra += "".join(f" {k}={sampler[k]}" for k in ("eta_sigma_min", "corrector") if sampler.get(k))  # where set
    extra += f" spacing={sampler['spacing']}" if sampler.get("spacing", "logsnr") != "logsnr" else ""
    return f"{name} steps={sampler.get('steps')}{extra}"


def compare(paths: list[Path], resamples: int) -> list[str]:
    runs = [load_run(p) for p in paths]
    base = runs[0]
    for p, r in zip(paths[1:], runs[1:]):
        if not torch.allclose(r["real_mean"], base["real_mean"]) or r["features"] != base["features"]:
            raise ConfigError(f"{p} was measured against other real images or features than {paths[0]}")
    reference = FrechetToReference(base["real_mean"], base["real_cov"])
    rows = ["| run | sampler | samples | FID | bootstrap std | ratio to first | difference to first | paired 5-95% "
            "| FID_inf | FID_inf ratio to first |", "|---|---|---|---|---|---|---|---|---|---|"]
    first = reference(base["fake"])
    first_inf = fid_infinity(base["fake"], reference)[0]
    for p, r in zip(paths, runs):
        fid = fid_interval(r["fake"], reference, resamples, seed=0)
        ratio, difference, interval = f"{fid.value / first:.3f}", f"{fid.value - first:+.3f}", "-"
        if r is not base:
            if r["seed"] == base["seed"] and r["fake"].shape == base["fake"].shape:
                q = paired_fid_difference(r["fake"], base["fake"], reference, resamples, seed=0)
                interval = f"{q.low:+.3f} to {q.high:+.3f}"
            else:
                interval = "not paired (seed or size differ)"
        inf = fid_infinity(r["fake"], reference)[0]
        rows.append(f"| {p} | {describe(r.get('sampler', {}))} | {len(r['fake'])} | {fid.value:.3f} | {fid.std:.3f} "
                    f"| {ratio} | {difference} | {interval} | {inf:.3f} | {inf / first_inf if first_inf > 0 else math.nan:.2f} |")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="evaluate output folders (or fid_features.pt files); A+B pools the samples "
                    "of runs that differ only in seed")
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--out", type=Path, help="also write the table here (Markdown)")
    args = ap.parse_args(argv)
    try:
        rows = compare(args.runs, args.resamples)
    except ConfigError as e:
        sys.exit(f"error: {e}")
    print("\n".join(rows))
    if args.out:
        args.out.write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
