"""A user's own config folder (--config-dir) adds options to the shipped groups and its own primary configs; the
command line is checked against both before any work, each mistake with one line."""

import pytest
import yaml

from difflab.checkpoint import load_checkpoint
from difflab.cli.checks import check_group_overrides
from tests.conftest import CONF, TINY, run_in_process

MYNET = {"defaults": ["unet_small", "_self_"], "base_channels": 8}  # the shipped small U-Net, narrower


@pytest.fixture
def user_conf(tmp_path):
    folder = tmp_path / "myconf"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "mynet.yaml").write_text(yaml.safe_dump(MYNET))
    return folder


def refusal(proc) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def test_a_user_model_trains_from_its_own_folder(tmp_path, user_conf):
    proc = run_in_process("train", "--config-dir", str(user_conf), *TINY, "model=mynet", "trainer.max_steps=2",
                          "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    model = ckpt["hyper_parameters"]["run_config"]["model"]
    assert model["base_channels"] == 8 and model["_target_"] == "difflab.nets.unet.UNet"  # mine over the shipped
    assert ckpt["global_step"] == 2


def test_options_of_the_user_folder_are_allowed_and_listed(user_conf, capsys):
    check_group_overrides(["--config-dir", str(user_conf), "model=mynet"], CONF, "train")  # would exit
    check_group_overrides([f"--config-dir={user_conf}", "-m", "model=mynet,unet"], CONF, "train")
    with pytest.raises(SystemExit):
        check_group_overrides(["model=mynet"], CONF, "train")  # without the folder it is unknown
    with pytest.raises(SystemExit):
        check_group_overrides(["--config-dir", str(user_conf), "model=mynett"], CONF, "train")
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: model=mynet is not a known option") and "mynet" not in err[0].split("allowed:")[1]
    assert err[1].startswith("error: model=mynett is not a known option") and "mynet, " in err[1]


def test_a_user_folder_in_hydra_searchpath_counts_too(user_conf):
    check_group_overrides([f"hydra.searchpath=[file://{user_conf}]", "model=mynet"], CONF, "train")


def test_a_user_primary_config_composes_the_shipped_one(tmp_path, user_conf):
    (user_conf / "mytrain.yaml").write_text(yaml.safe_dump({"defaults": ["train", {"override model": "mynet"},
                                                                         "_self_"], "seed": 7}))
    proc = run_in_process("train", "--config-dir", str(user_conf), "--config-name", "mytrain", *TINY[1:],
                          "trainer.max_steps=1", "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_config = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["hyper_parameters"]["run_config"]
    assert run_config["seed"] == 7 and run_config["model"]["base_channels"] == 8


@pytest.mark.parametrize("extra, needle", [
    (["model=mynet", "optimizer.lrr=1"], "+optimizer.lrr=1"),  # composed with the user's folder, not by Hydra
    (["model=mynet", "model.base_channels=abc"], "model.base_channels=abc is not valid"),
])
def test_mistakes_with_a_user_folder_are_one_line(tmp_path, user_conf, no_fit, extra, needle):
    proc = run_in_process("train", "--config-dir", str(user_conf), *extra, f"hydra.run.dir={tmp_path / 'run'}")
    assert needle in refusal(proc)
    assert not (tmp_path / "run").exists()


def test_a_missing_config_dir_is_one_line_before_any_work(tmp_path, no_fit):
    proc = run_in_process("train", "--config-dir", str(tmp_path / "nope"), "model=unet",
                          f"hydra.run.dir={tmp_path / 'run'}")
    assert refusal(proc) == f"error: --config-dir {tmp_path / 'nope'} does not exist (or is not a folder); give a " \
                            "folder of config files such as model/mynet.yaml"
    assert not (tmp_path / "run").exists()


def test_a_user_file_that_a_shipped_one_would_hide_is_refused(tmp_path, user_conf, no_fit):
    # Hydra searches the shipped configs first: this copy would be silently passed over.
    (user_conf / "model" / "unet.yaml").write_text((CONF / "model" / "unet.yaml").read_text())
    proc = run_in_process("train", "--config-dir", str(user_conf), "model=mynet", f"hydra.run.dir={tmp_path / 'r'}")
    message = refusal(proc)
    assert "model/unet.yaml has the name of a shipped config" in message and "model/my_unet.yaml" in message
