"""Reader for the IDX format of MNIST-style files, plain or gzipped (http://yann.lecun.com/exdb/mnist/)."""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from difflab.errors import ConfigError

# IDX type byte -> big-endian numpy dtype
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> torch.Tensor:
    """The array in an IDX file (magic 0 0 type ndim, then ndim big-endian uint32 sizes, then the data)."""
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # a .gz cut short raises EOFError, a damaged one zlib.error
        raise ConfigError(f"{path} cannot be read ({type(e).__name__}: {e}); the file is damaged or cut short, "
                          "replace it under data.root") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in DTYPES:
        raise ConfigError(f"{path} is not an IDX file (bad magic number); check the files under data.root")
    kind, ndim = data[2], data[3]
    offset, dtype = 4 + 4 * ndim, np.dtype(DTYPES[kind])
    shape = struct.unpack(f">{ndim}I", data[4:offset].ljust(4 * ndim, b"\0"))
    if len(data) - offset != int(np.prod(shape)) * dtype.itemsize:
        raise ConfigError(f"{path}: the header says {shape} x {dtype} but {len(data) - offset} bytes follow; "
                          f"the file is damaged, replace it under data.root")
    array = np.frombuffer(data, dtype, offset=offset).astype(dtype.newbyteorder("="))
    return torch.from_numpy(array).reshape(shape)
