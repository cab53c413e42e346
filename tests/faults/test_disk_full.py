"""A checkpoint write that fails (disk full) or a folder that cannot be written: one line, and the last.ckpt
already there still loads and resumes."""

import errno
from pathlib import Path

import pytest
import torch

from difflab.checkpoint import load_checkpoint
from difflab.errors import RunError
from difflab.train import train
from tests.conftest import TINY, compose_train, run_in_process


def test_disk_full_while_saving_keeps_the_previous_last_checkpoint(tmp_path, monkeypatch):
    save, calls = torch.save, []

    def full_disk(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 4:  # step_1, last (step 1), step_2, then last.ckpt of step 2: half of it, then no room
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    run = tmp_path / "run"
    proc = run_in_process("train", *TINY, "trainer.max_steps=4", "callbacks.checkpoint.every_n_train_steps=1",
                          "logger=none", f"hydra.run.dir={run}")
    monkeypatch.undo()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: could not write {run / 'checkpoints' / 'last.ckpt'} (No space left on device)")
    assert not list((run / "checkpoints").glob(".*.tmp"))  # the half-written file is gone
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1
    resumed = run_in_process("train", *TINY, "trainer.max_steps=3", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                             "logger=none", f"hydra.run.dir={tmp_path / 'resumed'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3


@pytest.mark.parametrize("key", ["paths.output_dir", "callbacks.checkpoint.dirpath"])
def test_unwritable_folder_is_one_line_before_training(tmp_path, key, no_fit):
    # a folder under a file: root, which these tests may run as, can write through any chmod
    (tmp_path / "file").write_text("")
    folder = tmp_path / "file" / "out"
    cfg = compose_train(tmp_path / "run", f"{key}={folder}", "logger=none")
    with pytest.raises(RunError, match=f"{key}={folder} cannot be written \\(Not a directory\\)"):
        train(cfg)


def test_unwritable_checkpoint_folder_from_the_command_line(tmp_path, no_fit):
    (tmp_path / "file").write_text("")
    proc = run_in_process("train", *TINY, f"callbacks.checkpoint.dirpath={tmp_path / 'file' / 'ckpt'}", "logger=none",
                          f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "error: callbacks.checkpoint.dirpath="), proc.stderr[-2000:]


def test_disk_full_on_any_other_write_is_one_line(tmp_path, monkeypatch):
    write_text = Path.write_text

    def full_disk(self, *args, **kwargs):
        if self.name == "summary.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    proc = run_in_process("train", *TINY, "logger=none", f"hydra.run.dir={tmp_path}")
    monkeypatch.undo()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == \
        f"error: could not write {tmp_path / 'summary.json'} (No space left on device); free space, or give " \
        "paths.output_dir=<a folder with room>"
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 3
