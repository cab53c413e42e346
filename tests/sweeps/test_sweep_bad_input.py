"""A sweep over an unknown option or key stops before any job, with one line naming it."""

from pathlib import Path

import pytest

from difflab.cli.checks import check_group_overrides
from tests.conftest import run_in_process

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(
    "sweep,needles",
    [
        (["model=unet,foo"], ["model=foo is not a known option", "allowed:", "dit"]),
        (["optimizer.lrr=1,2"], ["optimizer.lrr", "+optimizer.lrr=1"]),
        # Each key must exist for each value of the others: dit has no base_channels.
        (["model=unet,dit", "model.base_channels=16"], ["model.base_channels"]),
        # A value of the wrong type, anywhere in a swept list: caught by composing each value, not by job 2.
        (["optimizer.lr=1e-3,abc"], ["optimizer.lr=abc is not valid", "takes a number"]),
        (["model=glob(foo*)"], ["model=glob(foo*) matches no option", "allowed:", "unet_small"]),
        (["model=choice(unet,foo)"], ["model=foo is not a known option"]),
    ],
    ids=["group-option", "key", "key-in-second-option", "value-type", "glob", "choice"],
)
def test_sweep_with_unknown_choice_fails_before_any_job(tmp_path, sweep, needles):
    proc = run_in_process("train", "-m", "debug=sweep_tiny", *sweep, f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "Launching" not in proc.stdout
    for needle in needles:
        assert needle in err[0], err[0]
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("arg", ["model=glob(*)", "model=glob(dit*,exclude=dit_small)", "model=choice(unet,dit)",
                                 "model=[unet,dit]", "+model=unet", "model=null", "objective.weighting=min_snr"])
def test_group_sweeps_and_forms_that_name_existing_options_pass(arg):
    check_group_overrides([arg], CONF)  # would exit with status 2


def test_unknown_option_exits_with_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        check_group_overrides(["model=glob(dit*,exclude=dit*)"], CONF)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: model=glob(dit*,exclude=dit*) matches no option")
