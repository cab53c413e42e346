"""Optional dependencies: which extra of the package installs what, and one line naming the extra when a config
chooses something whose package is missing (instead of an ImportError deep inside a library)."""

import importlib.util

from omegaconf import OmegaConf

from difflab.errors import ConfigError

# A `_target_` (or a module holding targets) -> (the module it needs, the extra that installs it)
TARGETS = {
    "lightning.pytorch.loggers.TensorBoardLogger": ("tensorboard", "tensorboard"),
    "difflab.loggers.wandb_logger": ("wandb", "wandb"),
    "difflab.metrics.features.InceptionFeatures": ("torch_fidelity", "inception"),
    "difflab.nets.diffusers_unet": ("diffusers", "diffusers"),
}
# Hydra configs a plugin registers -> (the plugin's module, the extra that installs it)
PLUGIN_CONFIGS = {
    "hydra/sweeper/optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "hydra/launcher/submitit_local": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    "hydra/launcher/submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def needs(what: str, extra: str) -> str:
    return f"{what} needs the {extra} extra: pip install 'difflab[{extra}]'"


def require(module: str, extra: str, what: str) -> None:
    """Raise a one-line ConfigError naming the extra if `module` is not installed; `what` says who needs it."""
    if not installed(module):
        raise ConfigError(needs(what, extra))


def check_extras(cfg) -> None:
    """Raise ConfigError for the first `_target_` in cfg whose package is missing, naming its key and the extra."""
    for key, target in targets(OmegaConf.to_container(cfg, resolve=False)):
        for prefix, (module, extra) in TARGETS.items():
            if target == prefix or target.startswith(prefix + "."):
                require(module, extra, f"{key} ({target})")


def targets(node, key: str = ""):
    """(dotted key, _target_) of every node under `node` (plain dicts and lists) that names one."""
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            yield key, node["_target_"]
        for k, v in node.items():
            yield from targets(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from targets(v, f"{key}[{i}]")
