"""bench/throughput.py --tiny end to end: every part's table, in JSON, with positive rates."""

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_tiny_run_writes_every_table(tmp_path):
    # one thread: on a machine busy with other tests, a 2-thread OpenMP team waits on itself (10x slower steps)
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "throughput.py"), "--tiny", "--threads", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "throughput.json").read_text())
    assert {"machine", "matmul_peak", "train", "contest", "sample"} <= set(result)
    assert result["matmul_peak"]["fp32"] > 0 and result["matmul_peak"]["bf16"] > 0
    assert {(r["model"], r["precision"]) for r in result["train"]} == \
        {(m, p) for m in ("unet_small", "dit_small") for p in ("fp32", "bf16")}
    for r in result["train"]:
        assert r["images_per_s"] > 0 and r["flops_per_step"] > 0 and r["peak_mem_mib"] >= 0
    assert [r["precision"] for r in result["contest"]] == ["fp32", "bf16"]
    for r in result["contest"]:
        assert r["bare"]["images_per_s"] > 0 and r["difflab"]["images_per_s"] > 0 and r["ratio_difflab_bare"] > 0
    samplers = {r["sampler"] for r in result["sample"]["difflab"]}
    assert {"ddim", "ddpm", "heun"} <= samplers and all(r["images_per_s"] > 0 for r in result["sample"]["difflab"])
    assert [r["nfe"] for r in result["sample"]["difflab"] if r["sampler"] == "heun"] == [1, 3]  # 2 steps - 1
    text = (tmp_path / "throughput.md").read_text()
    assert "| unet_small | 8 | digits | fp32 |" in text

    if importlib.util.find_spec("diffusers") is None:
        assert "diffusers not installed: skipped" in proc.stdout and "diffusers" not in result["contest"][0]
        return
    for r in result["contest"]:
        assert r["diffusers"]["images_per_s"] > 0 and r["ratio_difflab_diffusers"] > 0
        assert 0.5 < r["params_diffusers"] / r["params_difflab"] < 2  # the peer is sized like difflab's U-Net
    assert [r["nfe"] for r in result["sample"]["ddim_vs_diffusers"]] == [2, 4]
    assert all(r["diffusers"] > 0 for r in result["sample"]["ddim_vs_diffusers"])
