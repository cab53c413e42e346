"""The Markdown tables of bench/throughput.py, from its JSON result."""

from throughput_config import describe
from throughput_measure import peak_key


def table(head: list[str], rows: list[list]) -> list[str]:
    def cell(v):
        if v is None:
            return "-"
        return f"{v:.3g}" if isinstance(v, float) and abs(v) < 10 else f"{v:.1f}" if isinstance(v, float) else str(v)

    return ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head),
            *("| " + " | ".join(cell(v) for v in r) + " |" for r in rows), ""]


def _rate(entry) -> float | None:
    return entry["images_per_s"] if entry else None


def train_table(rows, peak) -> list[str]:
    head = ["model", "size", "precision", "memory format", "params (M)", "batch", "ms/step", "images/s",
            "peak mem (MiB)", "GFLOP/step", "GFLOP/s", "share of matmul peak"]
    return table(head, [[r["model"], f"{r['size']}x{r['size']}x{r['channels']}", f"{r['precision']} ({r['resolved']})",
                         r["layout"], r["params"] / 1e6, r["batch"], r["ms_per_step"], r["images_per_s"],
                         r["peak_mem_mib"], r["flops_per_step"] / 1e9, r["flops_per_s"] / 1e9,
                         f"{100 * r['flops_per_s'] / peak[peak_key(r['resolved'])]:.1f}%"] for r in rows])


def contest_table(rows) -> list[str]:
    head = ["model", "size", "data", "precision", "batch", "steps timed", "params difflab / diffusers", "bare img/s",
            "difflab (Lightning) img/s", "diffusers img/s", "difflab / bare", "difflab / diffusers"]
    return table(head, [[r["model"], r["size"], r["data"], r["precision"], r["batch"],
                         f"{r['rounds']} x {r['bare']['timed_steps'] // r['rounds']}",
                         f"{r['params_difflab'] / 1e6:.2f}M / " +
                         (f"{r['params_diffusers'] / 1e6:.2f}M" if "params_diffusers" in r else "-"),
                         _rate(r["bare"]), _rate(r["difflab"]), _rate(r.get("diffusers")), r["ratio_difflab_bare"],
                         r.get("ratio_difflab_diffusers")] for r in rows])


def contest_rows_said(rows) -> list[str]:
    """Under the contest table: what each precision row compares, then each contestant's memory format and
    optimizer (from the first row of each precision: the same at every size)."""
    first = {}
    for r in rows:
        first.setdefault(r["precision"], r)
    who = [w for w in ("bare", "difflab", "diffusers") if w in rows[0]["layout"]]
    optimizers = sorted({r["optimizer"][w] for r in rows for w in who})
    return [*(f"- {describe(name, r['resolved'])}." for name, r in first.items()),
            f"- Memory format ({' / '.join(who)}): " +
            "; ".join(f"{name} {' / '.join(r['layout'][w] for w in who)}" for name, r in first.items()) +
            " (difflab's module.channels_last=auto, diffusers' example's default). Optimizer: " +
            (f"{optimizers[0]} for all" if len(optimizers) == 1 else
             "; ".join(f"{w} {rows[0]['optimizer'][w]}" for w in who)) + " (instantiate(cfg.optimizer)).", ""]


def sample_tables(s) -> list[str]:
    lines = [f"Sampling, {s['model']} at {s['size']}x{s['size']}, batch {s['batch']}, untrained "
             f"({s['params_difflab'] / 1e6:.2f}M parameters), as difflab's sample command runs by default: "
             f"precision=auto, {s['precision']} here ({s['why']}), memory format {s['layout']} "
             f"(module.channels_last=auto):", ""]
    lines += table(["sampler", "steps", "NFE", "images/s"],
                   [[r["sampler"], r["steps"], r["nfe"], r["images_per_s"]] for r in s["difflab"]])
    if s["ddim_vs_diffusers"]:
        settings = list(s["ddim_vs_diffusers"][0]["diffusers"])  # its default (32-true) first, then like for like
        role = dict(zip(settings, ("default", "like for like")))
        lines += [f"DDIM: difflab ({s['precision']}, {s['layout']}) against diffusers' DDIMScheduler loop on a "
                  f"UNet2DModel of {s['params_diffusers'] / 1e6:.2f}M parameters ({s['layout_diffusers']}, its "
                  "faster memory format here) at its default, fp32" +
                  (f", and like for like, {settings[1]}" if len(settings) > 1 else " (difflab's too, here)") +
                  f"; at each NFE they take turns ({s.get('rounds', 1)} x), each one's fastest kept:", ""]
        head = ["NFE", "difflab img/s", *(f"diffusers {p} img/s" for p in settings),
                *(f"difflab / diffusers {role[p]}" for p in settings)]
        compiled = "difflab_compiled" in s["ddim_vs_diffusers"][0]
        if compiled:
            head += ["difflab compile=true img/s", "compiled / diffusers default"]
        lines += table(head, [[r["nfe"], r["difflab"], *(r["diffusers"][p] for p in settings),
                               *(r["difflab"] / r["diffusers"][p] for p in settings),
                               *([r["difflab_compiled"], r["difflab_compiled"] / r["diffusers"][settings[0]]]
                                 if compiled else [])] for r in s["ddim_vs_diffusers"]])
        if compiled:
            lines += [f"compile=true: the first call, which compiles, took {s['compile_s']:.1f} s."]
    return lines


def quality_table(q) -> list[str]:
    if "skipped" in q:
        return [f"Quality: skipped ({q['skipped']})", ""]
    res = q["resolved"]
    lines = [f"Quality per compute: {q['minutes']} min training each, FID-domain of {q['num_samples']} "
             f"{q['sampler']} samples against the Fashion-MNIST test set; training and samples in difflab "
             f"{res['difflab']}, diffusers {res['diffusers']} (--quality-precision {q['precision']}: " +
             (f"each one's default; {res['why']})" if q["precision"] == "auto" else "like for like)") + ":", ""]
    rows = [[name, q[name]["steps"], q[name]["train_s"], q[name]["fid"], q[name].get("fid_std"), q[name]["sample_s"]]
            for name in ("difflab", "diffusers") if name in q]
    return lines + table(["contestant", "steps", "train s", "FID-domain", "FID std (bootstrap)", "sampling s"], rows)


def markdown(result: dict) -> str:
    m, peak = result["machine"], result["matmul_peak"]
    lines = [f"# Throughput, {m['date']}: {m['name']} ({m['device']}); torch {m['torch']}, lightning "
             f"{m['lightning']}, diffusers {m['diffusers'] or 'not installed'}", "",
             f"Matmul peak (best {result['matmul_size']}x{result['matmul_size']} torch.mm): " +
             ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peak.items()), ""]
    lines += [f"- {n}" for n in result["notes"]] + ([""] if result["notes"] else [])
    if "train" in result:
        lines += ["Training step (forward + backward + AdamW, no Lightning), fixed random batch:", ""]
        lines += train_table(result["train"], peak)
    if "contest" in result:
        lines += ["Training, three contestants: images/s from the median step after warm-up (rounds x steps, taking "
                  "turns); difflab is `difflab.train.train` with EMA, checkpoint, throughput, lr monitor, loss curve "
                  "and CSV logger (sample grids, trajectories, evaluation, progress bar off); all three read the same "
                  "training images through a DataLoader and clip the grad norm at 1:", ""]
        lines += contest_table(result["contest"])
        lines += contest_rows_said(result["contest"])
    if "sample" in result:
        lines += sample_tables(result["sample"])
    if "quality" in result:
        lines += quality_table(result["quality"])
    return "\n".join(lines)
