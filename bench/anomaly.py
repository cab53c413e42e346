"""One-class anomaly detection on Fashion-MNIST: a model trained on one class scores the whole test set.

    python src/train.py experiment=fashion_oneclass data.classes=[C] hydra.run.dir=RUN_C     # for each class C
    OMP_NUM_THREADS=1 .venv/bin/python bench/anomaly.py --ckpt RUN_0/checkpoints/last.ckpt RUN_1/... \
        [--num-images 10000] [--out bench/results/anomaly] [-- extra apply overrides, e.g. task.noise_level=0.2]

Each checkpoint's normal class is its own data.classes; AUROC (torchmetrics) of the reconstruction score
(AnoDDPM) and of bits/dim for "label is another class". Writes one apply run per checkpoint (panel.png, score
maps, anomaly.png with ROC curves, scores.csv) and anomaly.md with the table.
"""

import argparse
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from difflab.apps.apply import apply

CONF = Path(__file__).resolve().parent.parent / "conf"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", nargs="+", required=True)
    ap.add_argument("--num-images", type=int, default=None, help="first N test images (default: all)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/anomaly"))
    ap.add_argument("overrides", nargs="*", help="apply overrides, e.g. task.noise_level=0.2")
    args = ap.parse_args()
    rows = []
    for ckpt in args.ckpt:
        out = args.out / Path(ckpt).parent.parent.name
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose("apply", overrides=["task=anomaly", f"ckpt={ckpt}", "batch_size=250", "panel_rows=12",
                                              "num_images=" + ("null" if args.num_images is None else str(args.num_images)),
                                              f"paths.output_dir={out}", *args.overrides])
        start = time.perf_counter()
        m = apply(cfg)["metrics"]
        rows.append((ckpt, m, time.perf_counter() - start))
    keys = [k for k in ("auroc_reconstruction", "auroc_bits_per_dim") if any(k in m for _, m, _ in rows)]
    lines = ["| checkpoint | normal class | images (anomalous) | " + " | ".join(keys) + " | seconds |",
             "| --- | --- | --- |" + " --- |" * (len(keys) + 1)]
    for ckpt, m, s in rows:
        lines.append(f"| {ckpt} | {m.get('normal_classes')} | {m.get('num_normal', 0) + m.get('num_anomalous', 0)} "
                     f"({m.get('num_anomalous')}) | " + " | ".join(f"{m[k]:.4f}" for k in keys) + f" | {s:.0f} |")
    text = "\n".join([f"apply overrides: {args.overrides}", "", *lines])
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "anomaly.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
