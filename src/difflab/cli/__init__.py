"""What the commands share: where the configs are, and one-line errors instead of tracebacks (the early checks of
the command line are in cli/checks.py)."""

import errno
import functools
import sys
from pathlib import Path

from difflab.errors import ConfigError, RunError


def config_dir() -> Path:
    """The shipped configs: difflab/conf inside an installed wheel (pyproject maps conf/ there), else conf/ at the
    top of the checkout this package runs from."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "conf"
    return shipped if shipped.is_dir() else package.parent.parent / "conf"


CONFIG_DIR = config_dir()


def fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def reporting_errors(fn):
    """Turn a ConfigError raised anywhere in `fn` into 'error: <one line>' on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            cause = config_error_in(e) or full_disk(e)
            if cause is None:
                raise
            from difflab.sweeps.summary import record_job_error

            record_job_error(cause)  # a sweep's summary then says why this job stopped
            fail(str(cause).splitlines()[0] if str(cause) else type(cause).__name__)

    return wrapper


def config_error_in(e: BaseException) -> ConfigError | None:
    """The ConfigError behind e, also when hydra.utils.instantiate wrapped it in an InstantiationException."""
    while e is not None:
        if isinstance(e, ConfigError):
            return from_worker(e)
        e = e.__cause__ or e.__context__
    return None


def full_disk(e: BaseException) -> RunError | None:
    """A write that failed for want of room (any file: logs, samples, summary.json) as a one-line RunError."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        where = f" {e.filename}" if e.filename else ""
        return RunError(f"could not write{where} ({e.strerror}); free space, or give paths.output_dir=<a folder "
                        "with room>")
    return None


# Lines of Hydra/OmegaConf messages that only locate the error again.
NOISE = ("full_key:", "object_type=", "reference_type=", "Set the environment variable HYDRA_FULL_ERROR")


def one_line(e: BaseException) -> str:
    """The message and its cause's first line (Hydra puts 'Key ... is not in struct' there), as one line."""
    lines = [line.strip().rstrip(".:") for line in str(e).splitlines()]
    cause = str(e.__cause__ or "").strip().splitlines()[:1]
    if cause and cause[0] not in str(e):
        lines += cause
    return "; ".join(line for line in lines if line and not line.startswith(NOISE))


def from_worker(e: ConfigError) -> ConfigError:
    """A data-loader worker's ConfigError comes back as one whose message is the worker's whole traceback; its
    own message is the last line, after the type's name."""
    lines = str(e).strip().splitlines()
    if len(lines) > 1 and lines[0].startswith("Caught ") and "worker" in lines[0]:
        return type(e)(lines[-1].split(": ", 1)[-1])
    return e
