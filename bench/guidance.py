"""Classifier-free guidance (Ho & Salimans 2022, arXiv:2207.12598) of a class-conditional checkpoint, per scale.

    OMP_NUM_THREADS=1 .venv/bin/python bench/guidance.py --ckpt /work/runs/fashion_cfg/checkpoints/last.ckpt \
        [--scales 0 1 2 3 5] [--per-class 100] [--steps 50] [--seed 0] [--out bench/results/guidance]

For every guidance scale w (0 = unconditional, 1 = conditional, > 1 guided; difflab.diffusion.guidance) it draws
--per-class samples of each class from the same noise (sample i seeded by (seed, i), whatever w), and reports
  accuracy  the fraction the shipped domain classifier (difflab/metrics/weights/<data>.pt) puts in the requested class
  FID       FID-domain of all samples against the test split (difflab.metrics.evaluator, as `src/evaluate.py` does)
Writes guidance.csv, guidance.md (the table, also printed), guidance.png (both against w) and grid_w<w>.png (one row
per class) to --out: the trade-off Ho & Salimans report, class fidelity rising with w while diversity falls.
"""

import argparse
import csv
import time
from pathlib import Path

import matplotlib
import torch
from omegaconf import OmegaConf

from difflab.build import module_from_checkpoint
from difflab.callbacks.images import save_grid
from difflab.cli import reporting_errors
from difflab.evaluate import data_for
from difflab.metrics.domain import load_domain_classifier
from difflab.metrics.evaluator import real_images
from difflab.sampling import DDIM

from common import fid_evaluator

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GRID_COLUMNS = 10  # samples per class shown in each grid


def plot(rows: list[dict], path: Path) -> None:
    scales = [r["scale"] for r in rows]
    fig, (acc, fid) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=120)
    acc.plot(scales, [r["accuracy"] for r in rows], "o-")
    acc.set(xlabel="guidance scale w", ylabel="accuracy (domain classifier)", ylim=(0, 1.02),
            title="samples in the requested class")
    fid.plot(scales, [r["fid"] for r in rows], "o-", color="C1")
    fid.set(xlabel="guidance scale w", ylabel="FID-domain (test split)", title="sample quality")
    for ax in (acc, fid):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@reporting_errors
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True, help="a class-conditional checkpoint (model.num_classes set)")
    ap.add_argument("--scales", type=float, nargs="+", default=[0, 1, 2, 3, 5])
    ap.add_argument("--per-class", type=int, default=100, help="samples of each class per scale")
    ap.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the checkpoint's sampler)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-real", type=int, default=None, help="test images for the FID statistics (default: all)")
    ap.add_argument("--data-root", default=None, help="where the checkpoint's data live here, if not where trained")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="bench/results/guidance")
    args = ap.parse_args()
    if args.per_class < 1:
        ap.error(f"--per-class={args.per_class} is invalid; allowed: an integer >= 1")
    if min(args.scales) < 0:
        ap.error(f"--scales {min(args.scales):g} is invalid; allowed: numbers >= 0 (0 = unconditional)")

    module = module_from_checkpoint(args.ckpt).to(args.device)
    if module.num_classes is None:
        ap.error(f"--ckpt={args.ckpt} is unconditional; guidance needs a class-conditional model (model.num_classes)")
    datamodule = data_for(OmegaConf.create({"ckpt": args.ckpt, "data": None, "data_root": args.data_root}), module)
    datamodule.setup("test")
    real_set = datamodule.test_set
    num_real = min(args.num_real or len(real_set), len(real_set))
    classifier = load_domain_classifier(datamodule.name).to(args.device)
    y = torch.arange(module.num_classes).repeat_interleave(args.per_class)
    evaluator = fid_evaluator(datamodule.name, len(y), num_real, args.seed).to(args.device)
    for x in real_images(real_set, range(num_real), args.batch_size):
        evaluator.update_real(x.to(args.device))
    sampler = DDIM(steps=args.steps) if args.steps else module.sampler

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for w in args.scales:
        t0 = time.perf_counter()
        x = module.sample(len(y), sampler=sampler, seed=args.seed, y=y, guidance_scale=w, batch_size=args.batch_size)
        with torch.no_grad():
            predicted = torch.cat([classifier(b.to(args.device)).argmax(1).cpu() for b in x.split(args.batch_size)])
        evaluator.update_images(x)  # compute() below resets these samples' statistics and keeps the real ones
        rows.append({"scale": w, "accuracy": (predicted == y).float().mean().item(),
                     "fid": evaluator.compute()["fid"], "seconds": time.perf_counter() - t0})
        k = min(GRID_COLUMNS, args.per_class)
        save_grid(x.view(module.num_classes, args.per_class, *x.shape[1:])[:, :k].flatten(0, 1),
                  out / f"grid_w{w:g}.png", nrow=k)
        print(f"w={w:g}: accuracy {rows[-1]['accuracy']:.3f}, FID-domain {rows[-1]['fid']:.3f} "
              f"({rows[-1]['seconds']:.0f} s)", flush=True)

    with open(out / "guidance.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"ckpt: {args.ckpt}; sampler: {sampler}; {args.per_class} samples per class x {module.num_classes} classes "
        f"per scale, seed {args.seed}; FID-domain against {num_real} {datamodule.name} test images; accuracy by the "
        f"shipped domain classifier (its own test accuracy: {classifier.saved_config.get('test_accuracy', 'n/a')})",
        "", "| guidance scale w | accuracy | FID-domain | seconds |", "| --- | --- | --- | --- |",
        *[f"| {r['scale']:g} | {r['accuracy']:.3f} | {r['fid']:.2f} | {r['seconds']:.0f} |" for r in rows],
    ]
    (out / "guidance.md").write_text("\n".join(lines) + "\n")
    plot(rows, out / "guidance.png")
    print("\n".join(lines))
    print(f"wrote guidance.csv, guidance.md, guidance.png and grid_w*.png to {out}")


if __name__ == "__main__":
    main()
