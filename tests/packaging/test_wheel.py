"""difflab as a user installs it: the wheel, built from this checkout, installed into a venv of its own; its console
scripts run from an empty folder on the configs the wheel carries, with a user's config folder, and DDP's second
rank re-runs the console script. No network: the venv sees this environment's packages through a .pth file (a
folder of links to them, less the checkout's editable difflab and the packages of two extras, so that asking
for those extras meets really missing packages)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from difflab.checkpoint import load_checkpoint
from tests.conftest import CONF, ROOT

pytestmark = pytest.mark.slow

HIDDEN = {"tensorboard", "hydra_plugins/hydra_optuna_sweeper"}  # absent from the venv: their extras are "missing"
SCRIPTS = ["difflab-train", "difflab-sample", "difflab-evaluate", "difflab-apply", "difflab-train-features",
           "difflab-export"]
TINY = ["trainer=cpu", "data.batch_size=16", "schedule.timesteps=100", "sampler.steps=5", "logger=none",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "final_samples=0",
        "callbacks.evaluation.every_n_epochs=0", "callbacks.sample_grid.every_n_steps=0",
        "callbacks.trajectory.every_n_steps=0", "callbacks.loss_curve.every_n_steps=0", "~callbacks.progress_bar"]


def pip(*args):
    proc = subprocess.run([sys.executable, "-m", "pip", "-q", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def build_wheel(out: Path) -> Path:
    """The wheel of the working tree, built in a copy of it (the build leaves build/ and egg-info behind)."""
    src = out / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "conf", src / "conf", ignore=junk)
    shutil.copytree(ROOT / "src" / "difflab", src / "src" / "difflab", ignore=junk)
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out / "dist"), str(src))
    (wheel,) = (out / "dist").glob("difflab-*.whl")
    return wheel


def packages_view(view: Path) -> Path:
    """A folder of links to this environment's installed packages, less difflab itself and HIDDEN."""
    site = Path(sysconfig.get_paths()["purelib"])
    view.mkdir()
    for entry in site.iterdir():
        if entry.name.startswith(("difflab", "__editable__")) or entry.name in HIDDEN or entry.suffix == ".pth":
            continue
        if entry.name == "hydra_plugins":  # a namespace package: link its plugins one by one
            (view / entry.name).mkdir()
            for plugin in entry.iterdir():
                if f"hydra_plugins/{plugin.name}" not in HIDDEN:
                    (view / entry.name / plugin.name).symlink_to(plugin)
        else:
            (view / entry.name).symlink_to(entry)
    return view


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv with the wheel installed; returns its bin/ folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(tmp)
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(f"difflab/conf/{p.relative_to(CONF)}" for p in CONF.rglob("*.yaml"))
    assert sorted(n for n in names if n.startswith("difflab/conf/")) == shipped  # every config, in the package
    assert "difflab/metrics/weights/digits.pt" in names
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([env / "bin" / "python", "-c", code], check=True, capture_output=True, text=True).stdout
    (Path(purelib.strip()) / "_difflab_test_env.pth").write_text(f"{packages_view(tmp / 'view')}\n")
    pip("--python", str(env / "bin" / "python"), "install", "--no-deps", "--no-index", str(wheel))
    return env / "bin"


def run(bin_dir: Path, script: str, *args, cwd: Path, timeout=600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONUNBUFFERED="1", WANDB_MODE="offline", PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    return subprocess.run([str(bin_dir / script), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def one_line_refusal(proc) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


def test_the_installed_package_is_the_wheel(venv, tmp_path):
    assert all((venv / s).is_file() for s in SCRIPTS)
    code = "import importlib.util; print(importlib.util.find_spec('difflab').origin)"  # finds, does not import it
    origin = subprocess.run([venv / "python", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}).stdout.strip()
    assert venv.parent in Path(origin).parents and ROOT not in Path(origin).parents


def test_train_with_a_user_model_on_two_ddp_ranks_then_sample(venv, tmp_path):
    user = tmp_path / "myconf"
    (user / "model").mkdir(parents=True)
    (user / "model" / "mynet.yaml").write_text(yaml.safe_dump({"defaults": ["unet_small", "_self_"],
                                                               "base_channels": 8}))
    work = tmp_path / "work"
    work.mkdir()
    # Lightning starts rank 1 by running this command line again: the console script, from the same folder.
    proc = run(venv, "difflab-train", "--config-dir", str(user), "model=mynet", *TINY, "trainer=ddp",
               "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_steps=2", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (work / "outputs" / "runs").iterdir()
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 2 and ckpt["hyper_parameters"]["run_config"]["model"]["base_channels"] == 8
    assert ckpt["hyper_parameters"]["run_config"]["trainer"]["devices"] == 2
    assert "config " in (run_dir / "train_ddp_process_1.log").read_text()  # rank 1 ran this run, in its folder
    sources = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["runtime"]["config_sources"]
    main = next(s["path"] for s in sources if s["provider"] == "main")
    assert main.endswith("site-packages/difflab/conf") and str(ROOT) not in main

    proc = run(venv, "difflab-sample", f"ckpt={run_dir / 'checkpoints' / 'last.ckpt'}", "num_samples=4",
               "sampler=ddim", "sampler.steps=2", "hydra.run.dir=samples", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "samples" / "grid.png").is_file()


@pytest.mark.parametrize("flags, overrides, message", [
    ([], ["logger=tensorboard"], "logger.tensorboard (lightning.pytorch.loggers.TensorBoardLogger) needs the "
                                 "tensorboard extra: pip install 'difflab[tensorboard]'"),
    (["-m"], ["hydra/sweeper=optuna"], "hydra/sweeper=optuna needs the optuna extra: pip install 'difflab[optuna]'"),
    (["--config-dir", "nowhere"], [], "--config-dir nowhere does not exist (or is not a folder); give a folder of "
                                      "config files such as model/mynet.yaml"),
])
def test_refusals_are_one_line(venv, tmp_path, flags, overrides, message):
    proc = run(venv, "difflab-train", *flags, *TINY, "trainer.max_steps=1", *overrides, cwd=tmp_path)
    assert one_line_refusal(proc) == f"error: {message}"
    assert not list(tmp_path.rglob("*.ckpt"))
