"""The applications on held-out images of a trained unconditional model, against their classical baselines.

    OMP_NUM_THREADS=1 .venv/bin/python bench/applications.py --ckpt /work/runs/fashion_mnist_unet/checkpoints/last.ckpt \
        [--num-images 300] [--only inpaint superres denoise invert] [--out bench/results/applications]

Runs `src/apply.py`'s apply() (FID-domain against the whole test split with fid=true) for: inpainting with a
centre box (RePaint vs mean- and blur-fill), super-resolution x2 and x4 (ILVR vs bicubic), denoising at sigma
0.1 / 0.2 / 0.4 (Tweedie and SDEdit vs an oracle-tuned Gaussian blur) and inversion (plain DDIM vs exact at 10,
50 and 200 steps). Each run leaves its panel.png and metrics.json in --out/<name>/; the tables go to
--out/applications.md (also printed).
"""

import argparse
import json
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from difflab.apps.apply import apply

CONF = Path(__file__).resolve().parent.parent / "conf"

RUNS = {
    "inpaint": [("inpaint_centre_box", ["task=inpaint", "fid=true"])],
    "superres": [(f"superres_x{f}", ["task=superres", f"task.factor={f}", "fid=true"]) for f in (2, 4)],
    "denoise": [(f"denoise_sigma{s}", ["task=denoise", f"task.sigma={s}", "fid=true"]) for s in (0.1, 0.2, 0.4)],
    "invert": [(f"invert_{n}", ["task=invert", f"task.steps={n}"]) for n in (10, 50, 200)],
}
COLUMNS = {  # metric keys shown per family, in order
    "inpaint": ["psnr_masked_result", "psnr_masked_blur_fill", "psnr_masked_mean_fill", "fid_domain_result",
                "fid_domain_blur_fill", "fid_domain_mean_fill"],
    "superres": ["consistency_mae", "psnr_result", "psnr_bicubic", "fid_domain_result", "fid_domain_bicubic"],
    "denoise": ["psnr_input", "psnr_tweedie", "psnr_sdedit", "psnr_blur", "blur_std", "fid_domain_tweedie",
                "fid_domain_sdedit", "fid_domain_blur", "sigma_estimated"],
    "invert": ["psnr_ddim", "psnr_exact", "code_mean_ddim", "code_std_ddim", "code_mean_exact", "code_std_exact",
               "exact_worst_residual"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--num-images", type=int, default=300)
    ap.add_argument("--invert-images", type=int, default=32, help="inversion is slower: fewer images")
    ap.add_argument("--only", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--out", type=Path, default=Path("bench/results/applications"))
    args = ap.parse_args()
    lines = [f"checkpoint `{args.ckpt}`; first {args.num_images} test images ({args.invert_images} for inversion)", ""]
    for family in args.only:
        rows = []
        for name, overrides in RUNS[family]:
            n = args.invert_images if family == "invert" else args.num_images
            with initialize_config_dir(str(CONF), version_base="1.3"):
                cfg = compose("apply", overrides=[f"ckpt={args.ckpt}", f"num_images={n}", "batch_size=100",
                                                  f"paths.output_dir={args.out / name}", *overrides],
                              return_hydra_config=False)
            start = time.perf_counter()
            report = apply(cfg)
            metrics = report["metrics"]
            rows.append((name, metrics, time.perf_counter() - start))
            (args.out / name / "bench.json").write_text(json.dumps({"seconds": rows[-1][2]}) + "\n")
        keys = [k for k in COLUMNS[family] if any(k in m for _, m, _ in rows)]
        lines += [f"### {family}", "", "| run | " + " | ".join(keys) + " | seconds |",
                  "| --- |" + " --- |" * (len(keys) + 1)]
        lines += [f"| {name} | " + " | ".join(f"{m[k]:.4g}" if k in m else "-" for k in keys) + f" | {s:.0f} |"
                  for name, m, s in rows]
        lines.append("")
    text = "\n".join(lines)
    print(text)
    (args.out / "applications.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
