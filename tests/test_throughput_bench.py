"""bench/throughput.py --tiny end to end: every part's table, in JSON, with positive rates, and each precision
row computing in what it says."""

import importlib.util
import json

import pytest

from difflab.precision import resolve_precision
from tests.conftest import run_in_process


@pytest.mark.slow
def test_tiny_run_writes_every_table(tmp_path):
    # one thread: on a machine busy with other tests, a 2-thread OpenMP team waits on itself (10x slower steps)
    proc = run_in_process("bench/throughput.py", "--tiny", "--threads", "1", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "throughput.json").read_text())
    assert {"machine", "matmul_peak", "train", "contest", "sample"} <= set(result)
    assert result["matmul_peak"]["fp32"] > 0 and result["matmul_peak"]["bf16"] > 0
    # auto resolves to bf16 or fp32 on any machine: part 1 (difflab alone) does not repeat that row
    assert {(r["model"], r["precision"]) for r in result["train"]} == \
        {(m, p) for m in ("unet_small", "dit_small") for p in ("fp32", "bf16")}
    auto = resolve_precision("auto", "cpu")[0]
    assert any(n.startswith(f"train: auto is {auto} here") for n in result["notes"])
    for r in result["train"]:
        assert r["images_per_s"] > 0 and r["flops_per_step"] > 0 and r["peak_mem_mib"] >= 0
    assert [r["precision"] for r in result["contest"]] == ["fp32", "bf16", "auto"]
    for r in result["contest"]:
        assert r["bare"]["images_per_s"] > 0 and r["difflab"]["images_per_s"] > 0 and r["ratio_difflab_bare"] > 0
        # difflab / bare is like for like in every row: the Trainer's precision, the network's memory format
        assert r["resolved"]["bare"] == r["resolved"]["difflab"] and r["layout"]["bare"] == r["layout"]["difflab"]
        assert r["optimizer"]["bare"] == r["optimizer"]["difflab"] == "AdamW (fused)"
    fp32, bf16, default = (r["resolved"] for r in result["contest"])
    assert fp32["difflab"] == "32-true" and bf16["difflab"] == "bf16-mixed" and default["difflab"] == auto
    assert result["sample"]["precision"] == auto
    samplers = {r["sampler"] for r in result["sample"]["difflab"]}
    assert {"ddim", "ddpm", "heun"} <= samplers and all(r["images_per_s"] > 0 for r in result["sample"]["difflab"])
    assert [r["nfe"] for r in result["sample"]["difflab"] if r["sampler"] == "heun"] == [1, 3]  # 2 steps - 1
    text = (tmp_path / "throughput.md").read_text()
    assert "| unet_small | 8 | digits | fp32 |" in text
    assert f"auto: difflab's default, trainer.precision=auto ({auto} here" in text  # the rows said in words

    if importlib.util.find_spec("diffusers") is None:
        assert "diffusers not installed: skipped" in proc.stdout and "diffusers" not in result["contest"][0]
        return
    for r in result["contest"]:
        assert r["diffusers"]["images_per_s"] > 0 and r["ratio_difflab_diffusers"] > 0
        assert 0.5 < r["params_diffusers"] / r["params_difflab"] < 2  # the peer is sized like difflab's U-Net
        assert r["optimizer"]["diffusers"] == "AdamW (fused)"
    assert fp32["diffusers"] == "32-true" and bf16["diffusers"] == "bf16-mixed"
    assert default["diffusers"] == "32-true"  # train_unconditional.py's --mixed_precision defaults to "no"
    assert [r["nfe"] for r in result["sample"]["ddim_vs_diffusers"]] == [2, 4]
    for r in result["sample"]["ddim_vs_diffusers"]:  # its default first, then like for like where that differs
        assert list(r["diffusers"]) == ["32-true"] + ([auto] if auto != "32-true" else [])
        assert all(v > 0 for v in r["diffusers"].values())
