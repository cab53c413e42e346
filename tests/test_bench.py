"""The bench scripts end to end on the tiny checkpoint: samplers_nfe.py's table and its reuse, fid_compare.py's paired
table and pooling, goal_20nfe.sh. Each Python script runs in this process (run_in_process) but for one real process
each, which keeps the exit status and stderr as the shell sees them."""

import csv
import os
import subprocess
import sys

import pytest
import torch

from difflab.sampling import DDIM

from tests.conftest import ROOT, run_in_process


def real_process(script, *args):
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


@pytest.mark.slow
def test_nfe_table_and_reuse(trained_ckpt, tmp_path):
    common = ["--ckpt", str(trained_ckpt), "--samplers", "ddim", "dpmpp_2m_sde", "heun", "--num-samples", "8",
              "--num-real", "32", "--batch-size", "8"]
    first = run_in_process("bench/samplers_nfe.py", *common, "--nfe", "2", "3", "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    rows = list(csv.DictReader(open(tmp_path / "a" / "nfe.csv")))
    assert [r["sampler"] for r in rows] == ["ddpm (reference)"] + \
        ["ddim", "ddim", "dpmpp_2m_sde", "dpmpp_2m_sde", "heun", "heun"]
    assert {r["num_samples"] for r in rows} == {"8"} and [r["nfe"] for r in rows[-2:]] == ["1", "3"]  # heun: 2M - 1
    # a larger table over the same cells: only the new budget is sampled, the rest (reference included) reused;
    # heun's budget 4 buys no more than 3 evaluations, so it adds no cell
    second = real_process("bench/samplers_nfe.py", *common, "--nfe", "2", "3", "4", "--reuse",
                          str(tmp_path / "a" / "nfe.csv"), "--out", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr
    assert "7 cells taken from" in second.stdout and "[2/2]" in second.stdout and "[3/" not in second.stdout
    again = {(r["sampler"], r["nfe"]): r["fid_domain"] for r in csv.DictReader(open(tmp_path / "b" / "nfe.csv"))}
    assert all(again[(r["sampler"], r["nfe"])] == r["fid_domain"] for r in rows)
    assert (tmp_path / "b" / "nfe.png").stat().st_size > 0 and "| heun |" in (tmp_path / "b" / "nfe.md").read_text()


@pytest.mark.slow
def test_fid_compare_pairs_two_evaluate_runs(trained_ckpt, tmp_path):
    runs = []
    for name, sampler in [("ref", ["sampler=ddpm", "sampler.steps=null"]), ("fast", ["sampler=ddim", "sampler.steps=3"]),
                          ("other_seed", ["sampler=ddim", "sampler.steps=3", "seed=1"])]:
        proc = run_in_process("evaluate", f"ckpt={trained_ckpt}", *sampler, "metrics=[fid]", "num_samples=24",
                              f"hydra.run.dir={tmp_path / name}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(str(tmp_path / name))
    proc = run_in_process("bench/fid_compare.py", *runs, "--resamples", "20", "--out", str(tmp_path / "compare.md"))
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "compare.md").read_text().splitlines()
    assert len(rows) == 5 and "DDPM steps=None" in rows[2] and "| 1.000 | +0.000 | - |" in rows[2]
    cells = [c.strip() for c in rows[3].split("|")]
    low, high = map(float, cells[-4].split(" to "))
    assert low < high and float(cells[-5]) == pytest.approx(float(cells[4]) - float(rows[2].split("|")[4]), abs=2e-3)
    first_inf, inf = float(rows[2].split("|")[-3]), float(cells[-3])  # FID_inf: below the FID (bias removed)
    assert first_inf < float(rows[2].split("|")[4]) and inf < float(cells[4])
    assert float(cells[-2]) == pytest.approx(inf / first_inf, abs=0.01)
    assert "not paired" in rows[4]
    # pooling: runs that differ only in seed join into one larger set; anything else is a one-line error
    fc = ["bench/fid_compare.py", "--resamples", "20"]
    pooled = run_in_process(*fc, runs[0], f"{runs[1]}+{runs[2]}")
    assert pooled.returncode == 0, pooled.stderr
    assert "| 48 |" in pooled.stdout.splitlines()[3] and "not paired" in pooled.stdout.splitlines()[3]
    for bad, why, run in [(f"{runs[1]}+{runs[1]}", "seeds [0, 0] repeat", run_in_process),
                          (f"{runs[0]}+{runs[2]}", "differ in sampler", real_process)]:  # status and stderr as seen
        proc = run(*fc, runs[0], bad)
        assert proc.returncode != 0 and proc.stderr.startswith("error: cannot pool") and why in proc.stderr, proc.stderr
    # a run written before an option existed (its key absent, i.e. at its default) pools with one that names it
    older = torch.load(tmp_path / "other_seed" / "fid_features.pt", weights_only=True)
    assert older["sampler"]["clip_x0"] == DDIM.__dataclass_fields__["clip_x0"].default
    older["sampler"] = {k: v for k, v in older["sampler"].items() if k != "clip_x0"}
    torch.save(older, tmp_path / "older.pt")
    pooled = run_in_process(*fc, runs[0], f"{runs[1]}+{tmp_path / 'older.pt'}")
    assert pooled.returncode == 0 and "| 48 |" in pooled.stdout.splitlines()[3], pooled.stderr
    missing = run_in_process("bench/fid_compare.py", str(tmp_path))
    assert missing.returncode != 0 and missing.stderr.strip().startswith("error: ") and "fid_features.pt" in missing.stderr


@pytest.mark.slow
def test_goal_script_pools_seeds_and_compares_with_the_reference(trained_ckpt, tmp_path):
    """bench/goal_20nfe.sh: each sampler on every seed, pooled, against 1000-step (here all-step) ancestral; a re-run
    keeps the finished runs; a missing checkpoint is one line."""
    env = {**os.environ, "PYTHON": sys.executable, "N": "6", "SEEDS": "0 1", "ONLY": "ddpm1000 dpmpp_2m_sde_pc",
           "EXTRA": "num_real=32 sampler.steps=3"}
    script = str(ROOT / "bench" / "goal_20nfe.sh")
    first = subprocess.run(["bash", script, str(trained_ckpt), str(tmp_path)], capture_output=True, text=True,
                           timeout=600, cwd=ROOT, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = (tmp_path / "compare.md").read_text().splitlines()
    assert len(rows) == 4 and "| 12 |" in rows[2] and "DDPM" in rows[2] and "DPMSolverPP steps=3" in rows[3]
    assert "corrector=True" in rows[3] and "corrector" not in rows[2]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("*/*") if p.is_dir()) == \
        ["ddpm1000/s0", "ddpm1000/s1", "dpmpp_2m_sde_pc/s0", "dpmpp_2m_sde_pc/s1"]
    again = subprocess.run(["bash", script, str(trained_ckpt), str(tmp_path)], capture_output=True, text=True,
                           timeout=600, cwd=ROOT, env=env)
    assert again.returncode == 0 and "evaluate" not in again.stderr and again.stdout.endswith(first.stdout[-200:])
    other_n = subprocess.run(["bash", script, str(trained_ckpt), str(tmp_path)], capture_output=True, text=True,
                             timeout=600, cwd=ROOT, env={**env, "N": "8"})
    assert other_n.returncode == 2 and "another sample count than N=8" in other_n.stderr
    missing = subprocess.run(["bash", script, str(tmp_path / "none.ckpt")], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: checkpoint")


def test_fid_floor_draws_training_images_and_is_order_free():
    """bench/fid_floor.py: a draw of every training image is the same set in another order, so all such draws give
    one FID (std 0); draws of a few images differ."""
    result = run_in_process("bench/fid_floor.py", "--sizes", "64", "100000", "--draws", "3")
    assert result.returncode == 0, result.stderr
    small, whole = [line for line in result.stdout.splitlines() if "distinct)" in line]
    assert "(64 distinct)" in small and not small.split("+-")[1].strip().startswith("0.00")
    assert "distinct)" in whole and whole.split("+-")[1].strip().startswith("0.00 ")
    assert float(whole.split(":")[1].split("+-")[0]) < float(small.split(":")[1].split("+-")[0])


@pytest.mark.slow
def test_processes_table_on_tiny_runs(tmp_path):
    """bench/processes.py: each recipe trains, is scored per sampler and budget, and lands in the table and plot."""
    from tests.conftest import TINY

    own = ("schedule.", "trainer.max_steps", "trainer.enable_progress_bar", "callbacks.evaluation", "callbacks.loss_curve")
    tiny = [o for o in TINY if not o.startswith(own)]
    done = run_in_process("bench/processes.py", "--steps", "2", "--num-samples", "8", "--nfe", "2",
                          "--samplers", "heun", "--only", "flow/rectified_flow", "--out", str(tmp_path), *tiny)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "processes.md").read_text().splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == ["| flow/rectified_flow"]
    assert (tmp_path / "losses.png").stat().st_size > 0
    report = (tmp_path / "processes.json").read_text()
    assert '"sampler": "heun"' in report and '"nfe": 1' in report  # heun's budget 2 buys 2 x 1 - 1 evaluations
