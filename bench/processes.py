"""The field's recipes at equal compute: epsilon/cosine, v/cosine, flow/rectified_flow (logit-normal t) and EDM,
trained with the same network, steps, batch and seed, then FID-domain at 10, 20 and 50 network evaluations with each
recipe's best sampler, and the training loss curves on one plot.

    .venv/bin/python bench/processes.py [--steps 1000] [--num-samples 1024] [--out bench-out/processes] \
        [--only edm,v/cosine] [-- Hydra overrides for every run, e.g. experiment=fashion_mnist_unet]

Writes OUT/processes.json, OUT/processes.md (the table) and OUT/losses.png. Each run is `src/train.py` (evaluation
during training off) and each score `src/evaluate.py 'metrics=[fid]'`, so every figure can be reproduced by hand
from the commands the JSON records. A run or score already in OUT is reused: an interrupted bench resumes.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPES = {
    "epsilon/cosine": ["schedule=cosine", "objective=epsilon"],
    "v/cosine": ["schedule=cosine", "objective=v"],
    "flow/rectified_flow": ["schedule=rectified_flow", "schedule.t_sampling=logit_normal"],
    "edm": ["schedule=edm"],
}
NFES = (10, 20, 50)
# sampler config -> its grid steps for a budget of `nfe` network evaluations (Heun: 2 steps - 1 evaluations)
SAMPLERS = {"ddim": lambda nfe: nfe, "dpmpp_2m": lambda nfe: nfe, "heun": lambda nfe: (nfe + 1) // 2}


def options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps of every recipe")
    parser.add_argument("--num-samples", type=int, default=1024, help="samples per FID-domain")
    parser.add_argument("--seed", type=int, default=0, help="training seed (the samples use seed + 1)")
    parser.add_argument("--nfe", default=",".join(map(str, NFES)), help="network-evaluation budgets")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help=f"from {', '.join(SAMPLERS)}")
    parser.add_argument("--only", default=None, help=f"comma-separated recipes, from {', '.join(RECIPES)}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "processes")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every training run")
    args = parser.parse_args(argv)
    args.nfe = [int(n) for n in args.nfe.split(",")]
    args.samplers = args.samplers.split(",")
    args.recipes = list(RECIPES) if args.only is None else args.only.split(",")
    for name, allowed in ((r, RECIPES) for r in args.recipes):
        if name not in allowed:
            parser.error(f"--only {name} is not a recipe; allowed: {', '.join(RECIPES)}")
    for name in args.samplers:
        if name not in SAMPLERS:
            parser.error(f"--samplers {name} is not benchmarked; allowed: {', '.join(SAMPLERS)}")
    return args


def run(command: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    print("+", " ".join(command), flush=True)
    with log.open("w") as f:
        done = subprocess.run(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"error: {command[1]} failed ({done.returncode}); see {log}")


def slug(recipe: str) -> str:
    return recipe.replace("/", "-")


def train(recipe: str, args) -> tuple[Path, list[str]]:
    folder = args.out / slug(recipe)
    command = [sys.executable, "src/train.py", *args.overrides, *RECIPES[recipe], f"trainer.max_steps={args.steps}",
               f"seed={args.seed}", "callbacks.evaluation.every_n_epochs=0", "trainer.enable_progress_bar=false",
               f"hydra.run.dir={folder}"]
    if not (folder / "summary.json").is_file():
        run(command, folder / "train.out")
    return folder, command


def score(folder: Path, sampler: str, nfe: int, args) -> dict:
    steps = SAMPLERS[sampler](nfe)
    out = folder / f"eval_{sampler}_{nfe}"
    command = [sys.executable, "src/evaluate.py", f"ckpt={folder / 'checkpoints' / 'last.ckpt'}", "metrics=[fid]",
               f"num_samples={args.num_samples}", f"sampler={sampler}", f"sampler.steps={steps}",
               f"seed={args.seed + 1}", f"hydra.run.dir={out}"]
    if not (out / "metrics.json").is_file():
        run(command, out / "evaluate.out")
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    nfe_used = 2 * steps - 1 if sampler == "heun" else steps
    return {"sampler": sampler, "steps": steps, "nfe": nfe_used, "fid": metrics["fid"], "fid_std": metrics["fid_std"],
            "command": command}


def loss_curve(folder: Path) -> tuple[list[int], list[float]]:
    steps, losses = [], []
    for line in (folder / "loss.csv").read_text().splitlines()[1:]:
        step, split, loss = line.split(",")
        if split == "train":
            steps.append(int(step))
            losses.append(float(loss))
    return steps, losses


def plot_losses(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for recipe, (steps, losses) in curves.items():
        ax.plot(steps, losses, label=recipe, linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (each in its objective's own units)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(results: dict, nfes: list[int]) -> str:
    head = "| recipe | " + " | ".join(f"FID-domain at {n} NFE (best sampler)" for n in nfes) + " | training s |"
    lines = [head, "|" + " --- |" * (len(nfes) + 2)]
    for recipe, r in results.items():
        cells = []
        for n in nfes:
            best = min(r["scores"][str(n)], key=lambda s: s["fid"])
            cells.append(f"{best['fid']:.2f} ± {best['fid_std']:.2f} ({best['sampler']}, {best['nfe']})")
        lines.append(f"| {recipe} | " + " | ".join(cells) + f" | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    args = options(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results, curves = {}, {}
    for recipe in args.recipes:
        folder, command = train(recipe, args)
        summary = json.loads((folder / "summary.json").read_text())
        scores = {str(n): [score(folder, s, n, args) for s in args.samplers] for n in args.nfe}
        results[recipe] = {"train_command": command, "seconds": summary.get("seconds", float("nan")),
                           "scores": scores}
        curves[recipe] = loss_curve(folder)
    (args.out / "processes.json").write_text(json.dumps(results, indent=1))
    text = table(results, args.nfe)
    (args.out / "processes.md").write_text(text + "\n")
    plot_losses(curves, args.out / "losses.png")
    print(text)


if __name__ == "__main__":
    main()
