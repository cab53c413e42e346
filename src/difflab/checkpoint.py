"""Checkpoints: written atomically, read weights-only.

A checkpoint file is written to a temporary file in the same folder, flushed to disk and renamed over the
target, so a crash at any moment leaves either the previous complete file or the new one. Reading never
unpickles arbitrary objects (torch.load(weights_only=True)): a file cannot run code.
"""

import os
import pickle
import tempfile
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from difflab.errors import ConfigError, RunError


def atomic_torch_save(obj, path) -> None:
    """torch.save to a temporary file, fsync, then rename over `path` (atomic on POSIX filesystems)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def load_checkpoint(path, key: str = "ckpt", map_location="cpu") -> dict:
    """Read a difflab/Lightning checkpoint weights-only; bad paths and files raise one-line ConfigErrors."""
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise ConfigError(f"{key}={path} does not exist or is not a file; give the path of a .ckpt written by training")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"{key}={path} was refused: it holds objects other than tensors and plain data, and checkpoints "
            f"are loaded weights-only so a file cannot run code ({first})"
        ) from None
    except Exception as e:  # truncated, not a zip/pickle, ...
        raise ConfigError(f"{key}={path} is not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConfigError(f"{key}={path} is not a difflab checkpoint: it has no 'state_dict'")
    return ckpt


def check_writable(folder, key: str) -> None:
    """Create `folder` and write a file in it, so that a run which could never save stops with one line before it
    trains, not at its first checkpoint."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise RunError(f"{key}={folder} cannot be written ({e.strerror or type(e).__name__}); give a folder this "
                       "user can write to") from None


def nonfinite_weights(checkpoint: dict) -> str | None:
    """The first weight (EMA or raw) holding nan or inf, as 'state_dict/<name>', else None."""
    for part in ("state_dict", "current_model_state"):
        for name, value in (checkpoint.get(part) or {}).items():
            if torch.is_tensor(value) and value.is_floating_point() and not bool(value.isfinite().all()):
                return f"{part}/{name}"
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO that writes with `atomic_torch_save` and reads with `load_checkpoint`. It never
    writes weights holding nan or inf, and a failed write (disk full, ...) is one line: either way the file
    already at `path` stays as it was."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        bad = nonfinite_weights(checkpoint)
        if bad:
            raise RunError(f"{path} was not written: {bad} holds nan or inf (the run diverged); the checkpoints "
                           "already there are kept")
        try:
            atomic_torch_save(checkpoint, path)
        except OSError as e:
            raise RunError(f"could not write {path} ({e.strerror or type(e).__name__}); the checkpoint already "
                           f"there is kept: free space, or give paths.output_dir=<a folder with room>") from None

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return load_checkpoint(path, key="ckpt_path", map_location=map_location or "cpu")
