"""evaluate(cfg): FID / KID / bits-per-dim of a trained checkpoint; writes metrics.json and prints a table."""

import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from difflab.build import instantiate, module_from_checkpoint, sampler_for
from difflab.compile import check_compiler, compile_mode
from difflab.errors import ConfigError
from difflab.metrics.evaluator import build_evaluator
from difflab.metrics.task import EvaluationTask
from difflab.precision import device_type
from difflab.sampling.generate import check_num_samples, check_temperature


def data_for(cfg: DictConfig, module):
    """The data to compare against: `data=...` if given, else the checkpoint's own; image shapes must agree."""
    data_cfg = cfg.data if cfg.get("data") else OmegaConf.create(module.hparams.run_config["data"])
    if cfg.get("data_root"):
        data_cfg.root = cfg.data_root
    datamodule = instantiate(data_cfg)
    if tuple(datamodule.image_shape) != tuple(module.image_shape):
        raise ConfigError(
            f"ckpt={cfg.ckpt} makes images of shape {tuple(module.image_shape)} but data={data_cfg.get('name')} "
            f"gives {tuple(datamodule.image_shape)}; allowed: data whose channels and image_size match the checkpoint"
        )
    return datamodule


def evaluate(cfg: DictConfig) -> dict[str, float]:
    check_temperature(cfg.temperature)
    check_num_samples(cfg.num_samples, minimum=2, why="FID needs a covariance")  # before loading anything
    compile = compile_mode(cfg.get("compile"), "compile")
    check_compiler(cfg.get("compile"), device_type(cfg.trainer.get("accelerator", "auto")), "compile")
    module = module_from_checkpoint(cfg.ckpt, key="ckpt", precision=cfg.trainer.get("precision", "auto"),
                                    device=cfg.trainer.get("accelerator", "auto"))
    datamodule = data_for(cfg, module)
    datamodule.setup("test")
    real_set = datamodule.test_set if cfg.split == "test" else datamodule.val_set
    with open_dict(cfg):
        if cfg.metrics.get("domain_weights") is None:
            cfg.metrics.domain_weights = datamodule.name
    num_real = min(cfg.num_real or len(real_set), len(real_set))
    evaluator = build_evaluator(cfg.metrics, cfg.num_samples, num_real, seed=cfg.seed)
    sampler = sampler_for(module, cfg.get("sampler"))

    task = EvaluationTask(module, evaluator, real_set, sampler, cfg.temperature, cfg.batch_size, compile)
    # no_grad rather than Lightning's default inference_mode: under inference_mode autocast keeps no weight cache, and
    # every sampler step would cast every weight to bf16 again (precision.weight_cache)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False, inference_mode=False)
    trainer.test(task, verbose=False)
    results = task.results
    if trainer.is_global_zero:
        labels = evaluator.labels()
        report = {
            "ckpt": str(cfg.ckpt), "num_samples": cfg.num_samples, "num_real": num_real, "split": cfg.split,
            "features": evaluator.features_name, "sampler": {"_target_": f"{type(sampler).__module__}.{type(sampler).__qualname__}",
                        **OmegaConf.to_container(OmegaConf.structured(sampler))},
            "temperature": cfg.temperature, "seed": cfg.seed, "world_size": trainer.world_size,
            "metrics": results, "labels": {k: labels[k] for k in results},
        }
        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        if evaluator.fid_features is not None:  # for paired comparisons of runs (bench/fid_compare.py)
            torch.save({**evaluator.fid_features, "num_samples": cfg.num_samples, "sampler": report["sampler"],
                        "ckpt": str(cfg.ckpt)}, out / "fid_features.pt")
        width = max(len(labels[k]) for k in results)
        print("\n".join([f"{'metric':<{width}}  value", "-" * (width + 12)]
                        + [f"{labels[k]:<{width}}  {v:.4f}" for k, v in results.items()]))
        print(f"wrote {out / 'metrics.json'}")
    return results
