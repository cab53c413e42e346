"""A loss or gradient that becomes nan or inf: one line naming the step (or the step skipped), and no weights with
nan or inf in any checkpoint, EMA weights included."""

import pytest
import torch

from difflab.callbacks import Divergence
from difflab.checkpoint import AtomicCheckpointIO, load_checkpoint
from difflab.errors import ConfigError, RunError
from tests.conftest import TINY, run_in_process
from tests.faults.helpers import all_finite

EVERY_STEP = ["logger=none", "callbacks.checkpoint.every_n_train_steps=1", "trainer.max_steps=6"]
POISON = "+callbacks.poison._target_=tests.faults.helpers.PoisonBatch"


def error_line(proc) -> str:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_nonfinite_loss_stops_before_its_step_is_applied(tmp_path, value):
    proc = run_in_process("train", *TINY, *EVERY_STEP, POISON, "+callbacks.poison.step=3",
                          f"+callbacks.poison.value={value}", f"hydra.run.dir={tmp_path}")
    line = error_line(proc)
    assert line.startswith("error: training diverged at step 3: the loss is ") and "on_nonfinite=skip" in line
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 3 and all_finite(last)  # the EMA (state_dict) and the raw weights
    assert not (tmp_path / "summary.json").exists()


def test_huge_learning_rate_diverges_with_one_line(tmp_path):
    proc = run_in_process("train", *TINY, *EVERY_STEP, "optimizer.lr=1e30", "lr_scheduler=constant",
                          f"hydra.run.dir={tmp_path}")
    assert "training diverged at step" in error_line(proc)
    for path in (tmp_path / "checkpoints").glob("*.ckpt"):
        assert all_finite(load_checkpoint(path)), path


def test_skip_mode_drops_the_step_and_finishes_with_finite_weights(tmp_path):
    proc = run_in_process("train", *TINY, *EVERY_STEP, POISON, "+callbacks.poison.step=2",
                          "callbacks.divergence.on_nonfinite=skip", "trainer.log_every_n_steps=1",
                          f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, after = (load_checkpoint(tmp_path / "checkpoints" / f"step_{s:07d}.ckpt") for s in (2, 3))
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 6 and all_finite(last)
    # the skipped step moved neither the weights nor the optimizer's moments (clipping on: it met no gradients)
    for name, w in before["current_model_state"].items():
        torch.testing.assert_close(after["current_model_state"][name], w, rtol=0, atol=0)
    m0, m1 = (c["optimizer_states"][0]["state"] for c in (before, after))
    assert all(torch.equal(m0[k]["exp_avg"], m1[k]["exp_avg"]) for k in m0)
    assert {"skipped": 1} in last["callbacks"].values()  # the count resumes with the run


def test_skip_mode_stops_when_every_step_is_skipped(tmp_path):
    proc = run_in_process("train", *TINY, *EVERY_STEP, "optimizer.lr=1e30", "lr_scheduler=constant",
                          "callbacks.divergence.on_nonfinite=skip", "callbacks.divergence.max_consecutive_skips=2",
                          f"hydra.run.dir={tmp_path}")
    line = error_line(proc)
    assert line.startswith("error: training diverged at step 2: ") and "the last 2 steps were all skipped" in line


def test_a_nonfinite_checkpoint_is_never_written(tmp_path):
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"previous")
    with pytest.raises(RunError, match="state_dict/w holds nan or inf"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.tensor([1.0, float("inf")])}}, path)
    assert path.read_bytes() == b"previous"


def test_bad_values_are_refused():
    with pytest.raises(ConfigError, match="on_nonfinite=halt is not valid; allowed: stop | skip"):
        Divergence("halt")
    with pytest.raises(ConfigError, match="max_consecutive_skips=0 is not valid"):
        Divergence("skip", max_consecutive_skips=0)
