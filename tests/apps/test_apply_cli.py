"""src/apply.py end to end on a tiny trained checkpoint (digits 8x8), and its refusals of bad input."""

import json
import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from torchvision.io import write_png

import difflab.apps.apply
from difflab.apps.apply import apply
from difflab.cli import config_error_in
from difflab.errors import ConfigError
from tests.conftest import CONF, run_cli, run_in_process


def compose_apply(*overrides):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("apply", overrides=list(overrides))

FAST = {
    "inpaint": ["task.steps=6", "task.jump_length=2", "task.resample=2"],
    "superres": ["task.factor=2"],
    "denoise": ["task.sigma=0.2"],
    "anomaly": ["task.bpd_timesteps=2", "task.steps=3", "task.normal_classes=[0]"],
    "invert": ["task.steps=5"],
}


@pytest.mark.parametrize("task", list(FAST))
def test_each_task_writes_a_panel_and_metrics(trained_ckpt, tmp_path, task):
    out = tmp_path / task
    apply(compose_apply(f"task={task}", f"ckpt={trained_ckpt}", "num_images=12", "batch_size=8",
                        f"paths.output_dir={out}", *FAST[task]))
    report = json.loads((out / "metrics.json").read_text())
    assert report["num_images"] == 12 and (out / "panel.png").stat().st_size > 0
    metrics = report["metrics"]
    if task == "anomaly":  # the panel shows the most anomalous images first, across batches
        scores = torch.tensor([float(row.split(",")[1]) for row in (out / "scores.csv").read_text().splitlines()[1:]])
        assert report["panel_indices"] == scores.argsort(descending=True)[:8].tolist()
    else:
        assert report["panel_indices"] == list(range(8))
    if task == "inpaint":
        assert metrics["known_max_abs_change"] == 0.0 and "psnr_masked_result" in metrics
    if task == "superres":
        assert metrics["consistency_mae"] < 0.02 and "psnr_bicubic" in metrics
    if task == "denoise":
        assert {"psnr_tweedie", "psnr_sdedit", "psnr_blur", "blur_std"} <= set(metrics)
    if task == "invert":
        assert metrics["psnr_exact"] >= metrics["psnr_ddim"] - 1e-3 and {"code_std_exact", "code_mean_ddim"} <= set(metrics)
    if task == "anomaly":
        assert 0 <= metrics["auroc_reconstruction"] <= 1 and (out / "anomaly.png").is_file()


@pytest.mark.parametrize("task", list(FAST))
def test_each_task_runs_on_a_continuous_time_process(flow_ckpt, tmp_path, task):
    """On rectified flow every task indexes the process's level table (1000 levels evenly in log-SNR)."""
    out = tmp_path / task
    apply(compose_apply(f"task={task}", f"ckpt={flow_ckpt}", "num_images=4", "batch_size=4",
                        f"paths.output_dir={out}", *FAST[task]))
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics and all(math.isfinite(v) for v in metrics.values() if isinstance(v, float)), metrics
    if task == "inpaint":
        assert metrics["known_max_abs_change"] == 0.0
    if task == "superres":
        assert metrics["consistency_mae"] < 0.02


def test_degraded_inputs_from_files(trained_ckpt, tmp_path):
    low = (torch.rand(3, 1, 4, 4) * 255).to(torch.uint8)
    (tmp_path / "low").mkdir()
    for i, image in enumerate(low):
        write_png(image, str(tmp_path / "low" / f"{i}.png"))
    out = tmp_path / "out"
    done = run_in_process("apply", "task=superres", f"ckpt={trained_ckpt}", f"input={tmp_path / 'low'}",
                          "degraded=true", f"hydra.run.dir={out}")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "metrics.json").read_text())
    assert report["columns"] == ["input", "result", "bicubic"] and report["metrics"]["consistency_mae"] < 0.02


def _png(path, channels, size):
    write_png(torch.zeros(channels, size, size, dtype=torch.uint8), str(path))
    return path


@pytest.mark.parametrize("make_args, message", [
    (lambda d: ["task=superres", "task.factor=3"], "task.factor=3 does not divide the model's image size 8x8; "
                                                   "allowed: 2, 4, 8"),
    (lambda d: ["task=denoise", "task.sigma=-0.1"], "task.sigma=-0.1 is invalid"),
    (lambda d: ["task=inpaint", "task/mask=file", f"task.mask.path={_png(d / 'm.png', 1, 16)}"],
     "is 16x16 but the model makes 8x8 images"),
    (lambda d: ["task=denoise", f"input={_png(d / 'rgb.png', 3, 8)}"], "has 3 channel(s) at 8x8 but the task needs "
                                                                       "1 channel(s) at 8x8"),
    (lambda d: ["task=superres", f"input={_png(d / 'big.png', 1, 8)}", "degraded=true"],
     "needs 1 channel(s) at 4x4 (the model's size / task.factor)"),
    (lambda d: ["task=denoise", f"input={d / 'missing.png'}"], "does not exist"),
    (lambda d: ["task=denoise", "degraded=true"], "degraded=true needs input=PATH"),
    (lambda d: ["task=anomaly", "task.normal_classes=[12]"], "task.normal_classes=[12] is invalid"),
    (lambda d: ["task=invert", "task.method=edict"], "task.method='edict' is invalid; allowed: exact, ddim, both"),
    (lambda d: ["task=inpaint", "temperature=0"], "temperature=0 is invalid"),
    (lambda d: ["task=superres", "sampler=ddim", "sampler.steps=5000"], "sampler.steps=5000 is invalid"),
])
def test_bad_input_is_refused_before_sampling(trained_ckpt, tmp_path, make_args, message, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(difflab.apps.apply, "run_batches", lambda *a, **k: pytest.fail("sampling started"))
    with pytest.raises(Exception) as error:  # instantiate wraps a task's ConfigError; the command unwraps it
        apply(compose_apply(f"ckpt={trained_ckpt}", f"paths.output_dir={out}", *make_args(tmp_path)))
    cause = config_error_in(error.value)
    assert isinstance(cause, ConfigError) and message in str(cause) and "\n" not in str(cause)
    assert not (out / "panel.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("args, message, run", [
    (["task=foo"], "task=foo is not a known option", run_in_process),
    (["task=superres", "task.factor=3"], "task.factor=3 does not divide", run_cli),  # the command's real process
], ids=["unknown-task", "factor"])
def test_command_prints_one_error_line(trained_ckpt, tmp_path, args, message, run):
    done = run("apply", f"ckpt={trained_ckpt}", f"hydra.run.dir={tmp_path}", *args)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], done.stderr[-2000:]
