"""Plain DDIM and exact inversion of held-out test images through a trained checkpoint's deterministic DDIM decoder.

    OMP_NUM_THREADS=1 .venv/bin/python bench/inversion.py --ckpt /work/runs/fashion_mnist_unet/checkpoints/last.ckpt \
        [--num 64] [--steps 10 50 200] [--start 999 980] [--out bench/results/inversion]

Writes inversion.md (a Markdown table, also printed): per number of steps, the round trips' PSNR (dB on [-1, 1],
peak-to-peak 2, mean over images), the codes' mean and std, the exact solver's worst relative residual, network
evaluations and seconds; and inversion_<start>_<steps>.png per case, rows: input | plain round trip | exact round
trip | code (shown as code / CODE_DISPLAY_SCALE, clamped to [-1, 1]). `--start` lists the timesteps the codes live
at (default T-1): the decoder is unclamped DDIM, which from T-1 on the cosine schedule (abar_{T-1} ~ 2e-9)
amplifies the network's eps error by alpha_next / alpha_{T-1} and diverges even from pure noise.
"""

import argparse
import time
import warnings
from pathlib import Path

import torch
from omegaconf import OmegaConf

from difflab.build import instantiate, module_from_checkpoint
from difflab.callbacks.images import save_grid
from difflab.sampling import ddim_decode, ddim_invert, exact_invert

CODE_DISPLAY_SCALE = 3.0  # codes are ~N(0, 1): +-3 std map to the display range
PANEL_IMAGES = 8


def psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR [N] in dB of images on the [-1, 1] scale (peak-to-peak 2)."""
    mse = ((x - ref) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(4 / mse.clamp_min(1e-12))


def test_images(module, num: int) -> torch.Tensor:
    datamodule = instantiate(OmegaConf.create(module.hparams.run_config["data"]))
    datamodule.setup("test")
    return torch.stack([datamodule.test_set[i][0] for i in range(num)])


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(denoiser, x: torch.Tensor, steps: int, start: int, out: Path) -> dict:
    plain, t_plain = timed(lambda: ddim_invert(denoiser, x, steps, start=start))
    plain_rt, t_dec = timed(lambda: ddim_decode(denoiser, plain, steps, start=start))
    info = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the residual is reported in the table
        exact, t_exact = timed(lambda: exact_invert(denoiser, x, steps, start=start, info=info))
    exact_rt = ddim_decode(denoiser, exact, steps, start=start)
    k = min(PANEL_IMAGES, len(x))
    rows = [x[:k], plain_rt[:k], exact_rt[:k], (exact[:k] / CODE_DISPLAY_SCALE).clamp(-1, 1)]
    save_grid(torch.cat(rows), out / f"inversion_{start}_{steps}.png", nrow=k)
    return {
        "start": start, "steps": steps,
        "PSNR plain (dB)": psnr(plain_rt, x).mean().item(), "PSNR exact (dB)": psnr(exact_rt, x).mean().item(),
        "plain code mean": plain.mean().item(), "plain code std": plain.std().item(),
        "exact code mean": exact.mean().item(), "exact code std": exact.std().item(),
        "exact worst residual": info["residual"], "exact NFE": info["nfe"],
        "s plain inv": t_plain, "s exact inv": t_exact, "s decode": t_dec,
    }


def markdown(rows: list[dict]) -> str:
    keys = list(rows[0])
    fmt = {"exact worst residual": "{:.1e}", "start": "{}", "steps": "{}", "exact NFE": "{}"}
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt.get(k, "{:.3f}").format(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="/work/runs/fashion_mnist_unet/checkpoints/last.ckpt")
    ap.add_argument("--num", type=int, default=64, help="held-out test images (the first of the test split)")
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--start", type=int, nargs="+", default=None, help="timesteps of the codes (default T-1)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=Path("bench/results/inversion"))
    args = ap.parse_args()

    module = module_from_checkpoint(args.ckpt).to(args.device)
    x = test_images(module, args.num).to(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        rows = [run(module.denoiser(), x, steps, start, args.out)
                for start in args.start or [module.timesteps - 1] for steps in args.steps]
    table = (f"{args.num} test images of {module.hparams.run_config['data']['name']}, {args.ckpt}, device {args.device}, "
             f"schedule {type(module.schedule).__name__}\n\n" + markdown(rows))
    (args.out / "inversion.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
