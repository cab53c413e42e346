"""train(cfg): build everything from the composed config, check it, fit, and leave the run's artefacts."""

import json
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from difflab.build import build_module, instantiate, load_init_weights, sampler_for
from difflab.callbacks.ema import ema_module
from difflab.callbacks.sample_grid import preview_grid
from difflab.checkpoint import AtomicCheckpointIO, check_writable, load_checkpoint
from difflab.compile import check_compiler
from difflab.errors import ConfigError
from difflab.loggers import finish_wandb
from difflab.precision import choose_precision, device_type


def instantiate_group(cfg) -> list:
    """Instantiate every `_target_` entry of a callbacks/logger group (null entries are skipped)."""
    return [instantiate(c) for c in (cfg or {}).values() if c is not None and "_target_" in c]


def train(cfg: DictConfig) -> dict[str, float]:
    """Train a diffusion model as cfg says; returns the final metrics. Bad config raises ConfigError before fit."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    with open_dict(cfg):  # the run's config records what it computes in, not "auto"
        cfg.trainer.precision = choose_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator", "auto"))
    check_compiler(cfg.module.get("compile"), device_type(cfg.trainer.get("accelerator", "auto")), "module.compile")
    out = Path(cfg.paths.output_dir)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg, datamodule.image_shape)
    sampler_for(module)  # the sampler previews and evaluations use during fit
    if cfg.get("ckpt_path") and cfg.get("init_weights"):
        raise ConfigError("give ckpt_path (resume a run exactly) or init_weights (start a new run from a checkpoint's "
                          "weights), not both")
    if cfg.get("ckpt_path"):
        load_checkpoint(cfg.ckpt_path, key="ckpt_path")  # fail now, with one line, not after set-up
    if cfg.get("init_weights"):
        load_init_weights(module, cfg.init_weights)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    if not loggers:  # Lightning's LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if type(c).__name__ != "LearningRateMonitor"]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a progress-bar callback then
        callbacks = [c for c in callbacks if not isinstance(c, L.pytorch.callbacks.ProgressBar)]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()])
    if trainer.is_global_zero:
        check_writable(out, "paths.output_dir")
        for checkpoint in trainer.checkpoint_callbacks:
            if checkpoint.dirpath:
                check_writable(checkpoint.dirpath, "callbacks.checkpoint.dirpath")
        OmegaConf.save(module.hparams.run_config, out / "config.yaml")
    started = time.time()
    try:
        for logger in trainer.loggers:  # the whole composed config (resolved, plain), at the top level
            logger.log_hyperparams(module.hparams.run_config)
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    finally:
        finish_wandb(trainer)  # each job of a sweep is its own W&B run; a failed fit marks it failed

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    if trainer.is_global_zero:
        if cfg.get("final_samples", 0):
            preview_grid(ema_module(trainer, module), cfg.final_samples, out / "samples.png", seed=cfg.seed,
                         progress=True)
        summary = {"metrics": metrics, "seconds": round(time.time() - started, 1), "global_step": trainer.global_step}
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return metrics


def optimized_value(cfg: DictConfig, metrics: dict[str, float]):
    """The metric a sweeper minimises (cfg.optimized_metric), or None when none is asked for."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(
            f"optimized_metric={name} was never logged by this run; logged: {', '.join(sorted(metrics)) or 'nothing'}"
            " (eval/* metrics need callbacks.evaluation.every_n_epochs > 0 and a run of at least that many epochs)"
        )
    return metrics[name]
