"""Sample quality against network evaluations (NFE) for every sampler: which sampler to use at which budget.

    OMP_NUM_THREADS=1 .venv/bin/python bench/samplers_nfe.py --ckpt /work/runs/<run>/checkpoints/last.ckpt \
        [--samplers ddpm ddim dpmpp_2m heun] [--nfe 5 10 20 50 100 200 500 1000] [--num-samples 1000] [--seed 0] \
        [--batch-size 1000] [--out bench/results/samplers_nfe] [--reuse OLD/nfe.csv]

Each sampler is conf/sampler/<name>.yaml with `steps` set to hit the budget: the largest steps whose nfe() does not
exceed it. DDPM, DDIM and DPM-Solver++(2M) hit every budget up to T exactly; Heun's 2 steps - 1 evaluations are
odd, so Heun runs at budget - 1 for even budgets (the table and plot give the NFE actually spent). Every run draws
--num-samples samples from the same noise (sample i seeded by (seed, i)) and scores FID-domain against the test
split with the evaluator of `src/evaluate.py` (difflab.metrics.evaluator). DDPM with all T steps is the reference.
Writes nfe.csv, nfe.md (FID-domain, sampler x NFE budget; also printed) and nfe.png (FID-domain vs NFE) to --out.
--reuse takes the cells (the reference included) that an earlier nfe.csv measured with the same --num-samples and
--seed instead of sampling them again, so a table grows budget by budget. The network runs in the precision and
memory format module_from_checkpoint gives it (precision=auto, module.channels_last); --no-channels-last forces NCHW.
"""

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import matplotlib
import matplotlib.ticker
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from difflab.build import module_from_checkpoint
from difflab.cli import reporting_errors
from difflab.evaluate import data_for
from difflab.metrics.evaluator import real_images

from common import CONF, fid_evaluator

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REFERENCE = "ddpm"  # run with all T steps: the slow baseline every fast sampler is measured against


def at_budget(sampler, budget: int, T: int):
    """`sampler` with the most steps whose nfe(T) <= budget, or None if even one step costs more."""
    fits = (s for s in range(min(budget, T), 0, -1) if dataclasses.replace(sampler, steps=s).nfe(T) <= budget)
    steps = next(fits, None)
    return None if steps is None else dataclasses.replace(sampler, steps=steps)


def budget_runs(samplers: dict, budgets: list[int], T: int) -> list[tuple]:
    """(name, budget, sampler at that budget) for each sampler and budget, skipping budgets that buy no more NFE
    than a smaller one (beyond T steps, or below one step)."""
    runs = []
    for name, sampler in samplers.items():
        spent = set()
        for budget in sorted(budgets):
            run = at_budget(sampler, budget, T)
            if run is not None and run.nfe(T) not in spent:
                spent.add(run.nfe(T))
                runs.append((name, budget, run))
    return runs


def earlier_cells(path: Path, samplers: dict, T: int, num_samples: int, seed: int) -> dict:
    """{repr(sampler at the row's steps): (FID, seconds)} for the rows of an earlier nfe.csv drawn with the same
    num_samples and seed (a file without those columns does not qualify) by a sampler named in `samplers`."""
    if not path.is_file():
        raise FileNotFoundError(f"--reuse {path}: no such file (give the nfe.csv of an earlier run)")
    cells = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            name = row["sampler"].removesuffix(" (reference)")
            if name not in samplers or row.get("num_samples") != str(num_samples) or row.get("seed") != str(seed):
                continue
            steps = None if row["steps"] in ("", "None") else int(row["steps"])
            sampler = dataclasses.replace(samplers[name], steps=steps if steps is not None else T)
            cells[repr(sampler)] = float(row["fid_domain"]), float(row["seconds"])
    return cells


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows to path through a temporary file, so the previous nfe.csv stays whole until the new one is."""
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def plot(rows: list[dict], reference: dict, label: str, budgets: list[int], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name in dict.fromkeys(r["sampler"] for r in rows):
        mine = [r for r in rows if r["sampler"] == name]
        ax.plot([r["nfe"] for r in mine], [r["fid_domain"] for r in mine], "o-", label=name)
    ax.axhline(reference["fid_domain"], color="k", ls="--", lw=1, label=f"{REFERENCE}, {reference['nfe']} steps")
    ax.set(xscale="log", yscale="log", xlabel="network evaluations per sample (NFE)", ylabel=label,
           title="sample quality vs NFE")
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(rows: list[dict], budgets: list[int]) -> list[str]:
    """Markdown: one row per sampler, one column per budget, the best of each budget in bold; '(NFE n)' where the
    sampler spent n != budget."""
    best = {b: min(r["fid_domain"] for r in rows if r["budget"] == b) for b in {r["budget"] for r in rows}}
    lines = ["| sampler | " + " | ".join(f"NFE {b}" for b in budgets) + " |", "| --- |" + " --- |" * len(budgets)]
    for name in dict.fromkeys(r["sampler"] for r in rows):
        cells = {r["budget"]: (f"**{r['fid_domain']:.2f}**" if r["fid_domain"] == best[r["budget"]] else
                               f"{r['fid_domain']:.2f}") + (f" (NFE {r['nfe']})" if r["nfe"] != r["budget"] else "")
                 for r in rows if r["sampler"] == name}
        lines.append(f"| {name} | " + " | ".join(cells.get(b, "-") for b in budgets) + " |")
    return lines


@reporting_errors
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--samplers", nargs="+", default=["ddpm", "ddim", "dpmpp_2m", "heun"],
                    help="names of conf/sampler/*.yaml")
    ap.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 20, 50, 100, 200, 500, 1000])
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--num-real", type=int, default=None, help="test images for the FID statistics (default: all)")
    ap.add_argument("--data-root", default=None, help="where the checkpoint's data live here, if not where trained")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="bench/results/samplers_nfe")
    ap.add_argument("--reuse", default=None, help="an earlier nfe.csv: cells measured there are not sampled again")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    if args.num_samples < 2 or min(args.nfe) < 1:
        ap.error("--num-samples must be >= 2 (FID needs a covariance) and every --nfe >= 1")

    module = module_from_checkpoint(args.ckpt).to(args.device)
    if not args.channels_last:  # module_from_checkpoint chose the format (module.channels_last)
        module.net.to(memory_format=torch.contiguous_format)
    T = module.timesteps
    samplers = {name: instantiate(OmegaConf.load(CONF / "sampler" / f"{name}.yaml")) for name in args.samplers}
    runs = budget_runs(samplers, args.nfe, T)
    reference = dataclasses.replace(instantiate(OmegaConf.load(CONF / "sampler" / f"{REFERENCE}.yaml")), steps=T)

    datamodule = data_for(OmegaConf.create({"ckpt": args.ckpt, "data": None, "data_root": args.data_root}), module)
    datamodule.setup("test")
    real_set = datamodule.test_set
    num_real = min(args.num_real or len(real_set), len(real_set))
    evaluator = fid_evaluator(datamodule.name, args.num_samples, num_real, args.seed).to(args.device)
    label = evaluator.labels()["fid"]
    print(f"{args.ckpt}: T={T}, {label} against {num_real} {datamodule.name} test images, device {args.device}",
          flush=True)

    done = {}  # repr(sampler) -> (FID, seconds): the reference is also the ddpm run at NFE T
    if args.reuse:
        done.update(earlier_cells(Path(args.reuse), {**samplers, REFERENCE: reference}, T, args.num_samples, args.seed))
        print(f"{len(done)} cells taken from {args.reuse}", flush=True)
    todo = {repr(s) for s in [reference] + [run[2] for run in runs]} - set(done)
    total, measured = len(todo), []

    def measure(name: str, budget: int, sampler) -> dict:
        key = repr(sampler)
        if key not in done:
            t0 = time.perf_counter()
            evaluator.update_fake(module, range(args.num_samples), sampler, batch_size=args.batch_size)
            done[key] = evaluator.compute()["fid"], time.perf_counter() - t0  # compute() keeps the real statistics
            measured.append(key)
            print(f"[{len(measured)}/{total}] {name} steps={sampler.steps} nfe={sampler.nfe(T)}: "
                  f"FID-domain {done[key][0]:.3f} ({done[key][1]:.1f} s)", flush=True)
        return {"sampler": name, "budget": budget, "nfe": sampler.nfe(T), "steps": sampler.steps,
                "fid_domain": done[key][0], "seconds": done[key][1], "num_samples": args.num_samples,
                "seed": args.seed}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        for x in real_images(real_set, range(num_real), args.batch_size):
            evaluator.update_real(x.to(args.device))
        ref_row = measure(REFERENCE, T, reference)
        rows = []
        for run in runs:  # nfe.csv after every cell: an interrupted run resumes with --reuse
            rows.append(measure(*run))
            write_csv(out / "nfe.csv", [{**ref_row, "sampler": f"{REFERENCE} (reference)"}] + rows)
    lines = [f"ckpt: {args.ckpt}; {label} against {num_real} {datamodule.name} test images; seed {args.seed}; "
             f"device {args.device}", "",
             f"reference: {REFERENCE}, all {T} steps: FID-domain {ref_row['fid_domain']:.2f}", "",
             *table(rows, sorted(args.nfe)), "", "samplers (steps set per budget):",
             *[f"- {name}: {s}" for name, s in samplers.items()]]
    (out / "nfe.md").write_text("\n".join(lines) + "\n")
    plot(rows, ref_row, label, sorted(args.nfe), out / "nfe.png")
    print("\n".join(lines))
    print(f"wrote nfe.csv, nfe.md and nfe.png to {out}")


if __name__ == "__main__":
    main()
