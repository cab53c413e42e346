"""apply(cfg): run one application (conf/task/*.yaml) of a trained model on images, writing a labelled panel
(panel.png: input | result | baselines | reference), metrics.json, scores.csv and results.pt."""

import csv
import dataclasses
import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from tqdm.auto import tqdm

from difflab.apps.inputs import SPLITS, dataset_for, load_observation
from difflab.apps.panel import panel_order, save_panel
from difflab.apps.result import Observation, Result
from difflab.build import instantiate, module_from_checkpoint, pick_device, sampler_for
from difflab.errors import ConfigError
from difflab.precision import choose_precision, weight_cache
from difflab.sampling.generate import check_temperature


def run_batches(task, module, obs: Observation, batch_size: int, temperature: float) -> Result:
    """The task over batches; columns and scores concatenated, per-batch metrics averaged by batch size."""
    parts = []
    for lo in tqdm(range(0, len(obs.x), batch_size), desc=type(task).__name__.lower()):
        hi = min(lo + batch_size, len(obs.x))
        part = Observation(
            x=obs.x[lo:hi].to(module.device),
            reference=None if obs.reference is None else obs.reference[lo:hi].to(module.device),
            labels=None if obs.labels is None else obs.labels[lo:hi], seed=obs.seed, start_index=lo)
        with torch.no_grad():  # not inference_mode: under it autocast keeps no weight cache (weight_cache)
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
    with weight_cache(device, module.autocast_dtype):  # each weight cast once for all batches and steps
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
