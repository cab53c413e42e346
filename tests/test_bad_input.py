"""Bad input: one line naming the key and what is allowed, a non-zero exit, no traceback, before any training.

Each command runs in this process (run_in_process: the script, its argv and Hydra's main, without a new interpreter);
one case per command runs as a real process, for the exit status and for stderr as the shell sees it."""

import pickle

import pytest
import torch

from difflab.checkpoint import load_checkpoint
from difflab.errors import ConfigError
from tests.conftest import TINY, run_cli, run_in_process


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert len(err) == 1 and err[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in err[0], err[0]
    assert "Epoch" not in proc.stdout + proc.stderr  # nothing trained


@pytest.mark.parametrize(
    "overrides,needles",
    [
        (["model=foo"], ["model=foo", "allowed:", "unet"]),
        (["model=dit_small", "model.patch_size=3"], ["model.patch_size=3", "data.image_size=8"]),
        (["model.in_channels=3"], ["model.in_channels=3", "data.channels=1"]),
        (["schedule.timesteps=0"], ["schedule.timesteps=0", ">= 1"]),
        (["sampler.steps=0"], ["sampler.steps=0"]),
        (["sampler.steps=101"], ["sampler.steps=101", "schedule.timesteps=100"]),
        (["data=fashion_mnist", "data.root=/no/such/folder"], ["data.root=/no/such/folder", "does not exist"]),
        (["ckpt_path=/no/such.ckpt"], ["ckpt_path=/no/such.ckpt", "does not exist"]),
        (["optimizer.lrr=1"], ["optimizer.lrr", "not in struct", "+optimizer.lrr=1"]),
        (["model.base_channels"], ["model.base_channels", "override"]),
        (["optimizer.lr=abc"], ["optimizer.lr=abc is not valid", "takes a number", "default: 0.001"]),
        (["trainer.max_steps=1.5"], ["trainer.max_steps=1.5", "takes an integer"]),
        (["trainer.precision=33"], ["trainer.precision=33", "'bf16-mixed'"]),
        (["module.compile=fast"], ["module.compile=fast", "allowed: null (eager), true, default"]),
    ],
    ids=["model", "patch", "channels", "timesteps", "steps0", "stepsT", "root", "ckpt", "key", "no-value", "lr-type",
         "steps-type", "precision", "compile"],
)
def test_train_rejects_bad_config(tmp_path, overrides, needles, no_fit):
    proc = run_in_process("train", *TINY, f"hydra.run.dir={tmp_path}", *overrides)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    "overrides,needles",
    [
        (["schedule=rectified_flow", "objective=v"], ["objective=v", "variance-preserving", "allowed there"]),
        (["schedule=rectified_flow", "objective=epsilon"], ["objective=epsilon", "alpha = 0", "flow, x0 or edm"]),
        (["schedule=edm", "objective=v"], ["objective=v", "schedule=edm"]),
        (["schedule=edm", "schedule.sigma_min=100"], ["schedule.sigma_min=100", "sigma_min < sigma_max"]),
        (["schedule=edm", "schedule.P_std=0"], ["schedule.P_std=0", "> 0"]),
        (["schedule=rectified_flow", "schedule.t_sampling=beta"], ["schedule.t_sampling='beta'", "logit_normal"]),
        (["schedule=rectified_flow", "schedule.std=-1"], ["schedule.std=-1", "> 0"]),
        (["schedule=edm", "sampler=heun", "sampler.spacing=cosine"], ["sampler.spacing='cosine'", "karras"]),
    ],
    ids=["rf-v", "rf-eps", "edm-v", "sigma-order", "p-std", "t-sampling", "rf-std", "spacing"],
)
def test_train_rejects_bad_continuous_time_config(tmp_path, overrides, needles, no_fit):
    """schedule=rectified_flow / edm: pairs an objective cannot read back, parameters out of range, a spacing
    that does not exist."""
    tiny = [o for o in TINY if not o.startswith("schedule.")]
    proc = run_in_process("train", *tiny, f"hydra.run.dir={tmp_path}", *overrides)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_train_command_prints_one_line_and_exits_2(tmp_path):
    """A value refused inside the job (not by the early override check): only the error line reaches stderr."""
    proc = run_cli("train", *TINY, f"hydra.run.dir={tmp_path}", "schedule.timesteps=0")
    assert proc.returncode == 2
    assert_one_line_error(proc, "schedule.timesteps=0", ">= 1")
    assert not (tmp_path / "checkpoints").exists()


def test_train_rejects_file_that_is_not_a_checkpoint(tmp_path, no_fit):
    bad = tmp_path / "notes.ckpt"
    bad.write_text("hello")
    proc = run_in_process("train", *TINY, f"hydra.run.dir={tmp_path / 'run'}", f"ckpt_path={bad}")
    assert_one_line_error(proc, "ckpt_path=", "not a readable checkpoint")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.slow
def test_checkpoint_whose_pickle_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _RunsCode(marker)}, evil)
    assert not marker.exists()
    with pytest.raises(ConfigError, match="weights-only"):
        load_checkpoint(evil)
    proc = run_cli("sample", f"ckpt={evil}", f"hydra.run.dir={tmp_path / 'out'}")  # the sample command's real process
    assert proc.returncode == 2
    assert_one_line_error(proc, f"ckpt={evil}", "weights-only")
    assert not marker.exists()


@pytest.mark.parametrize("args,needles", [
    (["ckpt=/missing.ckpt"], ["ckpt=/missing.ckpt", "does not exist"]),
    (["temperature=0"], ["temperature=0", "> 0"]),
    (["temperature=-1"], ["temperature=-1", "> 0"]),
    (["sampler=ddim", "sampler.steps=5000"], ["sampler.steps=5000"]),
    (["sampler=nope"], ["sampler=nope", "ddim"]),
    (["sampler=ddim", "sampler.stepz=5"], ["sampler.stepz", "not in struct"]),
    (["compile=fast"], ["compile=fast", "allowed: null (eager), true, default"]),
])
def test_sample_rejects_bad_input(tmp_path, trained_ckpt, args, needles):
    args = [a if not a.startswith("ckpt=") else a for a in args]
    ckpt = [] if any(a.startswith("ckpt=") for a in args) else [f"ckpt={trained_ckpt}"]
    proc = run_in_process("sample", *ckpt, *args, f"hydra.run.dir={tmp_path}")
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "grid.png").exists()


def test_unpicklable_file_message_is_one_line(tmp_path):
    bad = tmp_path / "x.ckpt"
    with open(bad, "wb") as f:
        pickle.dump({"a": 1}, f)
    with pytest.raises(ConfigError) as e:
        load_checkpoint(bad)
    assert "\n" not in str(e.value)


@pytest.fixture
def no_cpp_compiler():
    """Inductor finds no C++ compiler: its search list names one that does not exist (as CXX=... would)."""
    from torch._inductor import config
    from torch._inductor.cpp_builder import cpp_compiler_search

    cpp_compiler_search.cache_clear()
    with config.patch({"cpp.cxx": (None, "no-such-c++-compiler")}):
        yield
    cpp_compiler_search.cache_clear()


def test_compile_without_a_cpp_compiler_is_one_line_before_work(tmp_path, no_fit, no_cpp_compiler, trained_ckpt):
    proc = run_in_process("train", *TINY, f"hydra.run.dir={tmp_path / 'train'}", "module.compile=true")
    assert_one_line_error(proc, "module.compile=True", "C++ compiler", "no-such-c++-compiler", "null (eager)")
    assert not (tmp_path / "train" / "checkpoints").exists()
    proc = run_in_process("sample", f"ckpt={trained_ckpt}", "compile=true", f"hydra.run.dir={tmp_path / 'sample'}")
    assert_one_line_error(proc, "compile=True", "C++ compiler")
    assert not (tmp_path / "sample" / "samples.png").exists()
    proc = run_in_process("evaluate", f"ckpt={trained_ckpt}", "compile=true", f"hydra.run.dir={tmp_path / 'eval'}")
    assert_one_line_error(proc, "compile=True", "C++ compiler")
