"""FID/KID/bits-per-dim end to end: the evaluate command, in-training evaluation, and DDP invariance."""

import json
import math

import pytest
import torch

from difflab.metrics.evaluator import Evaluator, shard
from difflab.train import train
from tests.conftest import compose_train, run_cli, run_in_process


def run_evaluate(tmp_path, ckpt, *args, name="run", run=run_in_process):
    out = tmp_path / name
    proc = run("evaluate", f"ckpt={ckpt}", *args, f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text()), proc


def test_shards_cover_every_index_once():
    for n, world in [(10, 1), (10, 3), (7, 2), (1, 2)]:
        got = [i for r in range(world) for i in shard(n, r, world)]
        assert got == list(range(n))


def test_evaluate_command_writes_metrics_and_table(tmp_path, trained_ckpt):
    report, proc = run_evaluate(tmp_path, trained_ckpt, "metrics=[fid,kid,nll]", "num_samples=48", "sampler=ddim",
                                "sampler.steps=4", "metrics.nll.timesteps=8", "metrics.nll.num_images=16")
    m = report["metrics"]
    assert set(m) == {"fid", "fid_std", "kid_mean", "kid_std", "nll_bpd"}
    assert 0 < m["fid_std"] < m["fid"]
    saved = torch.load(tmp_path / "run" / "fid_features.pt", weights_only=True)
    assert saved["fake"].shape == (48, 128) and saved["num_samples"] == 48 and saved["seed"] == 0
    assert "bootstrap std, 100 resamples" in report["labels"]["fid_std"]
    assert m["fid"] > 0 and math.isfinite(m["kid_mean"]) and 0 < m["nll_bpd"] < 100
    assert report["labels"]["fid"] == "FID-domain, 48 samples"
    assert "FID-domain, 48 samples" in proc.stdout and report["features"] == "domain"


def test_evaluate_samples_outside_inference_mode(tmp_path, trained_ckpt, monkeypatch):
    """Lightning's test loop runs under torch.inference_mode by default, where autocast keeps no weight cache and a
    bf16 sampler would cast every weight at every step: evaluate's Trainer runs it under no_grad."""
    import importlib

    generate_module = importlib.import_module("difflab.sampling.generate")
    held, states = generate_module.weight_cache, []

    def recording(device, dtype):
        states.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return held(device, dtype)

    monkeypatch.setattr(generate_module, "weight_cache", recording)
    run_evaluate(tmp_path, trained_ckpt, "metrics=[fid]", "num_samples=8", "sampler=ddim", "sampler.steps=2",
                 "num_real=16")
    assert states and set(states) == {(False, False)}


@pytest.mark.slow
def test_fid_is_the_same_with_one_and_two_ddp_processes(tmp_path, trained_ckpt):
    args = ["metrics=[fid,kid]", "num_samples=50", "sampler=ddim", "sampler.steps=3", "trainer.accelerator=cpu"]
    one, _ = run_evaluate(tmp_path, trained_ckpt, *args, name="one")
    two, _ = run_evaluate(tmp_path, trained_ckpt, *args, "trainer=ddp", "trainer.devices=2", name="two",
                          run=lambda *a: run_cli(*a, timeout=600))  # DDP starts the second rank as a process
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["metrics"]["fid"] == pytest.approx(one["metrics"]["fid"], rel=1e-4)
    assert two["metrics"]["fid_std"] == pytest.approx(one["metrics"]["fid_std"], rel=1e-3)  # features in index order
    assert two["metrics"]["kid_mean"] == pytest.approx(one["metrics"]["kid_mean"], rel=1e-4, abs=1e-7)


def test_training_logs_fid_every_n_epochs(tmp_path):
    cfg = compose_train(tmp_path, "data.batch_size=256", "trainer.max_steps=10", "callbacks.evaluation.every_n_epochs=1",
                        "callbacks.evaluation.num_samples=16", "sampler.steps=3", "trainer.log_every_n_steps=1")
    metrics = train(cfg)
    assert metrics["eval/fid"] > 0
    rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    assert "eval/fid" in rows[0]
    assert sum(1 for r in rows[1:] if r.split(",")[rows[0].split(",").index("eval/fid")]) == 2  # two epochs


def test_evaluator_rejects_too_few_samples():
    from difflab.errors import ConfigError

    with pytest.raises(ConfigError, match="num_samples=1"):
        Evaluator(None, num_samples=1, num_real=10)


@pytest.mark.parametrize("args,needles", [
    (["metrics=[fid,foo]"], ["metrics=foo", "allowed:", "fid", "kid", "nll"]),
    (["num_samples=1"], ["num_samples=1", ">= 2"]),
    (["metrics.fid_bootstrap=1"], ["metrics.fid_bootstrap=1", "0 (off)", ">= 2"]),
    (["metrics.fid_bootstrap=lots"], ["metrics.fid_bootstrap=lots", "takes an integer"]),
    (["metrics/features=inception"], ["metrics.inception_weights", "online"]),
    (["data=fashion_mnist"], ["(1, 8, 8)", "(1, 28, 28)"]),
])
def test_evaluate_rejects_bad_input(tmp_path, trained_ckpt, args, needles):
    from tests.test_bad_input import assert_one_line_error

    if "metrics/features=inception" in args:  # torch.hub announces its download attempt on stderr first
        proc = run_in_process("evaluate", f"ckpt={trained_ckpt}", *args, f"hydra.run.dir={tmp_path}", "num_samples=4")
        proc.stderr = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("Downloading:"))
        assert_one_line_error(proc, *needles)
        return
    proc = run_in_process("evaluate", f"ckpt={trained_ckpt}", *args, f"hydra.run.dir={tmp_path}", "num_samples=4"
                          if not any(a.startswith("num_samples") for a in args) else "seed=0")
    assert_one_line_error(proc, *needles)
    assert "samples:" not in proc.stderr


@pytest.mark.slow
def test_evaluate_command_prints_one_line_and_exits_2(tmp_path, trained_ckpt):
    """The command's real process: a checkpoint refused inside the job leaves one line on stderr, status 2."""
    from tests.test_bad_input import assert_one_line_error

    proc = run_cli("evaluate", f"ckpt={trained_ckpt}", "data=fashion_mnist", f"hydra.run.dir={tmp_path}",
                   "num_samples=4")
    assert proc.returncode == 2
    assert_one_line_error(proc, "(1, 8, 8)", "(1, 28, 28)")
    assert "samples:" not in proc.stderr
