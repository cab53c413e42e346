"""Choosing what an uninstalled extra provides stops before any work with one line that names the extra.

A package counts as missing here as it does for Python: its sys.modules entry is None (import fails, find_spec
finds nothing); a Hydra plugin's configs are taken out of Hydra's ConfigStore as well, as if never registered.
tests/packaging/test_wheel.py checks the same on a venv where the package is really absent."""

import sys

import pytest
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins

from difflab import extras
from tests.conftest import ROOT, TINY, compose_train, run_in_process


def one_line_refusal(proc) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture
def without(monkeypatch):
    def hide(module: str):
        monkeypatch.setitem(sys.modules, module, None)

    return hide


@pytest.fixture
def without_plugin(monkeypatch, without):
    def hide(module: str, *configs: str):
        Plugins.instance()  # the plugins register their configs once per process, when first scanned
        without(module)
        for config in configs:
            group, _, name = config.rpartition("/")
            node = ConfigStore.instance().repo
            for part in group.split("/"):
                node = node[part]
            monkeypatch.delitem(node, f"{name}.yaml")

    return hide


@pytest.mark.parametrize("module, overrides, message", [
    ("tensorboard", ["logger=tensorboard"], "logger.tensorboard (lightning.pytorch.loggers.TensorBoardLogger) needs "
                                             "the tensorboard extra: pip install 'difflab[tensorboard]'"),
    ("tensorboard", ["logger=many"], "logger.tensorboard (lightning.pytorch.loggers.TensorBoardLogger) needs the "
                                      "tensorboard extra: pip install 'difflab[tensorboard]'"),
    ("wandb", ["logger=wandb"], "logger.wandb (difflab.loggers.wandb_logger) needs the wandb extra: "
                                "pip install 'difflab[wandb]'"),
    ("torch_fidelity", ["metrics/features=inception"], "metrics.features (difflab.metrics.features.InceptionFeatures)"
                                                       " needs the inception extra: pip install 'difflab[inception]'"),
])
def test_a_chosen_target_whose_package_is_missing(tmp_path, no_fit, without, module, overrides, message):
    without(module)
    proc = run_in_process("train", *TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert one_line_refusal(proc) == f"error: {message}"  # checked before the data and the model are built


def test_the_default_config_needs_no_extra(tmp_path, without):
    for module in ("tensorboard", "wandb", "torch_fidelity", "diffusers"):
        without(module)
    extras.check_extras(compose_train(tmp_path, tiny=False))  # would raise


def test_every_target_named_exists():
    from hydra.utils import get_object

    for target in extras.TARGETS:
        if target != "difflab.nets.diffusers_unet":  # a module: its targets are inside
            assert callable(get_object(target)), target


@pytest.mark.parametrize("module, configs, args, message", [
    ("hydra_plugins.hydra_optuna_sweeper", ["hydra/sweeper/optuna"], ["-m", "hydra/sweeper=optuna"],
     "hydra/sweeper=optuna needs the optuna extra: pip install 'difflab[optuna]'"),
    # the sweep file's defaults choose the sweeper: the file is read from the user folder
    ("hydra_plugins.hydra_optuna_sweeper", ["hydra/sweeper/optuna"],
     ["-m", "--config-dir", str(ROOT / "sweeps"), "--config-name", "optuna_fid"],
     "hydra/sweeper=optuna needs the optuna extra: pip install 'difflab[optuna]'"),
    # conf/hydra/launcher/local.yaml extends the plugin's submitit_local
    ("hydra_plugins.hydra_submitit_launcher", ["hydra/launcher/submitit_local", "hydra/launcher/submitit_slurm"],
     ["-m", "hydra/launcher=local"],
     "hydra/launcher=submitit_local needs the submitit extra: pip install 'difflab[submitit]'"),
])
def test_a_chosen_hydra_plugin_that_is_missing(tmp_path, no_fit, without_plugin, module, configs, args, message):
    without_plugin(module, *configs)
    proc = run_in_process("train", *args, "debug=sweep_tiny", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert one_line_refusal(proc) == f"error: {message}"
    assert not (tmp_path / "sweep").exists()


def test_require_names_who_needs_the_extra():
    extras.require("json", "none", "anything")  # installed: nothing happens
    with pytest.raises(extras.ConfigError, match=r"^difflab-export needs the diffusers extra: pip install "
                                                 r"'difflab\[diffusers\]'$"):
        extras.require("no_such_module_here.sub", "diffusers", "difflab-export")
