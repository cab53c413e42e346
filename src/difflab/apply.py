"""apply(cfg): run one application (conf/task/*.yaml) of a trained model on images, writing a labelled panel
(panel.png: input | result | baselines | reference), metrics.json, scores.csv and results.npz."""

import csv
import dataclasses
import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from tqdm.auto import tqdm

from difflab.apps.result import Observation, Result
from difflab.build import instantiate, module_from_checkpoint, sampler_for
from difflab.errors import ConfigError
from difflab.precision import choose_precision
from difflab.sampling.generate import check_temperature
from difflab.sample import pick_device

SPLITS = ("test", "val", "train")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def dataset_for(cfg: DictConfig, module):
    """The checkpoint's data (all classes unless input_classes says otherwise), set up."""
    data_cfg = OmegaConf.create(module.hparams.run_config["data"])
    data_cfg.classes = cfg.get("input_classes")
    if cfg.get("data_root"):
        data_cfg.root = cfg.data_root
    datamodule = instantiate(data_cfg)
    datamodule.setup()
    return datamodule


def read_images(path: Path) -> torch.Tensor:
    """One image file, or every image in a folder (sorted by name), as [N x C x H x W] in [-1, 1]."""
    from torchvision.io import ImageReadMode, read_image

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"input={path} holds no images; allowed: a .png/.jpg file or a folder of them")
    images = []
    for f in files:
        try:
            images.append(read_image(str(f), ImageReadMode.UNCHANGED).float() / 127.5 - 1)
        except RuntimeError as e:
            raise ConfigError(f"input image {f} cannot be read ({str(e).splitlines()[0]})") from None
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise ConfigError(f"input={path} mixes image shapes {sorted(shapes)}; allowed: images of one size")
    return torch.stack(images)


def load_observation(cfg: DictConfig, module, task) -> Observation:
    """Inputs as the task expects them: clean images it degrades itself (reference known), or degraded ones."""
    source = str(cfg.input)
    if source in SPLITS:
        if cfg.degraded:
            raise ConfigError(f"degraded=true needs input=PATH to your degraded images; input={source} is clean data")
        datamodule = dataset_for(cfg, module)
        dataset = {"test": datamodule.test_set, "val": datamodule.val_set, "train": datamodule.train_set}[source]
        n = len(dataset) if cfg.num_images is None else min(cfg.num_images, len(dataset))
        items = [dataset[i] for i in range(n)]
        x, y = torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items])
        return Observation(x=x, reference=x, labels=y, seed=cfg.seed)
    path = Path(source).expanduser()
    if not path.exists():
        raise ConfigError(f"input={source} does not exist; allowed: {', '.join(SPLITS)} or an image file/folder")
    x = read_images(path)
    if cfg.num_images is not None:
        x = x[: cfg.num_images]
    expected = tuple(module.image_shape)
    if cfg.degraded and hasattr(task, "observed_shape"):
        expected = task.observed_shape(expected)
    if tuple(x.shape[1:]) != expected:
        c, h, w = x.shape[1:]
        raise ConfigError(f"input={source} has {c} channel(s) at {w}x{h} but the task needs {expected[0]} channel(s) "
                          f"at {expected[2]}x{expected[1]}" + (" (the model's size / task.factor)" if cfg.degraded
                                                              and expected != tuple(module.image_shape) else ""))
    return Observation(x=x, reference=None if cfg.degraded else x, seed=cfg.seed)


def run_batches(task, module, obs: Observation, batch_size: int, temperature: float) -> Result:
    """The task over batches; columns and scores concatenated, per-batch metrics averaged by batch size."""
    parts = []
    for lo in tqdm(range(0, len(obs.x), batch_size), desc=type(task).__name__.lower()):
        hi = min(lo + batch_size, len(obs.x))
        part = Observation(
            x=obs.x[lo:hi].to(module.device),
            reference=None if obs.reference is None else obs.reference[lo:hi].to(module.device),
            labels=None if obs.labels is None else obs.labels[lo:hi], seed=obs.seed, start_index=lo)
        with torch.inference_mode():
            parts.append((hi - lo, task(module, part, temperature=temperature, progress=False)))
    first = parts[0][1]
    total = sum(n for n, _ in parts)
    return Result(
        columns={k: torch.cat([r.columns[k].cpu() for _, r in parts]) for k in first.columns},
        outputs=first.outputs,
        scores={k: torch.cat([r.scores[k].cpu() for _, r in parts]) for k in first.scores},
        metrics={k: v if all(r.metrics[k] == v for _, r in parts) else sum(n * r.metrics[k] for n, r in parts) / total
                 for k, v in first.metrics.items()},
        panel_sort=first.panel_sort,
    )


def fid_domain(cfg: DictConfig, module, result: Result) -> dict[str, float]:
    """FID-domain of every output column against the checkpoint's test images."""
    from difflab.metrics.evaluator import build_evaluator, real_images

    datamodule = dataset_for(cfg, module)
    real = datamodule.test_set
    with open_dict(cfg):
        cfg.metrics.domain_weights = cfg.metrics.get("domain_weights") or datamodule.name
    n = len(next(iter(result.columns.values())))
    evaluator = build_evaluator(cfg.metrics, n, len(real), seed=cfg.seed)
    for batch in real_images(real, range(len(real))):
        evaluator.update_real(batch)
    out = {}
    for name in result.outputs:
        evaluator.update_images(result.columns[name])
        out[f"fid_domain_{name}"] = evaluator.compute()["fid"]
    return out


def panel_order(result: Result, rows: int) -> torch.Tensor:
    """Indices of the images the panel shows, top to bottom: the first `rows`, or the `rows` highest of the score
    result.panel_sort names."""
    if result.panel_sort:
        return result.scores[result.panel_sort].cpu().argsort(descending=True)[:rows]
    return torch.arange(min(rows, len(next(iter(result.columns.values())))))


def save_panel(result: Result, path: Path, rows: int) -> None:
    """Rows = the first `rows` images (by result.panel_sort, highest first, if set), columns = result.columns with
    their names on top; the row's index (and score, where the task gives one) on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from difflab.callbacks.images import to_unit

    names = list(result.columns)
    order = panel_order(result, rows)
    n = len(order)
    score_name = result.panel_sort or next(iter(result.scores), None)
    fig, axes = plt.subplots(n, len(names), figsize=(1.3 * len(names) + 0.3, 1.3 * n + 0.45), squeeze=False)
    for i, k in enumerate(order.tolist()):
        label = f"#{k}" + (f"\n{float(result.scores[score_name][k]):.3g}" if score_name else "")
        axes[i][0].set_ylabel(label, fontsize=7)
    if score_name:
        fig.text(0.005, 0.998, f"rows: image index, {score_name.replace('_', ' ')}"
                 + (" (highest first)" if result.panel_sort else ""), fontsize=6, va="top")
    for j, name in enumerate(names):
        images = to_unit(result.columns[name][order])
        for i in range(n):
            ax = axes[i][j]
            image = images[i].permute(1, 2, 0).numpy()
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, vmin=0, vmax=1, interpolation="nearest",
                      cmap="inferno" if name.endswith("map") else "gray")  # score maps as heat
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(name.replace("_", " "), fontsize=8)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 1 - 0.12 / (1.3 * n + 0.45)))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(cfg: DictConfig, result: Result, report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_panel(result, out / "panel.png", cfg.panel_rows)
    (out / "metrics.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if result.scores:
        with open(out / "scores.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["index", *result.scores])
            for i, row in enumerate(zip(*(v.tolist() for v in result.scores.values()))):
                writer.writerow([i, *row])
    torch.save({k: v.half() for k, v in result.columns.items()}, out / "results.pt")


def apply(cfg: DictConfig) -> dict:
    check_temperature(cfg.temperature)
    if cfg.num_images is not None and not (isinstance(cfg.num_images, int) and cfg.num_images >= 1):
        raise ConfigError(f"num_images={cfg.num_images} is invalid; allowed: an integer >= 1 or null (all)")
    task = instantiate(cfg.task)
    device = pick_device(cfg.device)
    precision = choose_precision(cfg.get("precision", "auto"), device, key="precision")
    module = module_from_checkpoint(cfg.ckpt, key="ckpt", precision=precision, device=device).to(device)
    if hasattr(task, "sampler"):  # sampler=ddpm picks the task's reverse process; else the task's, or the checkpoint's
        task = dataclasses.replace(task, sampler=sampler_for(module, cfg.get("sampler") or task.sampler))
    obs = load_observation(cfg, module, task)
    task.check(module, obs)  # every refusal happens here, before any sampling
    result = run_batches(task, module, obs, cfg.batch_size, cfg.temperature)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {**result.metrics, **{k: float(v.float().mean()) for k, v in result.scores.items()}}
    if hasattr(task, "summarize"):
        metrics.update(task.summarize(module, result, obs.labels, out))
    if cfg.fid and obs.reference is not None and str(cfg.input) in SPLITS:
        metrics.update(fid_domain(cfg, module, result))
    report = {"task": cfg.task.get("_target_", "").rsplit(".", 1)[-1], "ckpt": str(cfg.ckpt), "input": str(cfg.input),
              "num_images": len(obs.x), "temperature": cfg.temperature, "seed": cfg.seed,
              "columns": list(result.columns), "task_config": OmegaConf.to_container(cfg.task, resolve=True),
              "metrics": metrics, "figures": {k: str(v) for k, v in result.figures.items()},
              "panel_indices": panel_order(result, cfg.panel_rows).tolist()}
    write_outputs(cfg, result, report, out)
    width = max(map(len, metrics))
    print("\n".join(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}"
                    for k, v in metrics.items()))
    print(f"wrote {out / 'panel.png'} and {out / 'metrics.json'}")
    return report
