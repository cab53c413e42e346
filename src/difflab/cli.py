"""What the entry points share: one-line errors instead of tracebacks, and early checks of group overrides."""

import functools
import sys
from pathlib import Path

from difflab.errors import ConfigError


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
            cause = config_error_in(e)
            if cause is None:
                raise
            fail(str(cause).splitlines()[0] if str(cause) else type(cause).__name__)

    return wrapper


def config_error_in(e: BaseException) -> ConfigError | None:
    """The ConfigError behind e, also when hydra.utils.instantiate wrapped it in an InstantiationException."""
    while e is not None:
        if isinstance(e, ConfigError):
            return e
        e = e.__cause__ or e.__context__
    return None


def group_options(config_dir: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir / group).glob("*.yaml"))


def check_group_overrides(argv: list[str], config_dir) -> None:
    """Exit with one line if an override picks a config-group option that does not exist (model=foo), so that
    neither a run nor any job of a sweep starts. Handles comma sweeps (model=unet,dit) and +/~ prefixes."""
    config_dir = Path(config_dir)
    for arg in argv:
        if "=" not in arg or arg.startswith(("-", "~", "hydra")):
            continue
        key, value = arg.lstrip("+").split("=", 1)
        group = key.replace(".", "/")
        if "@" in group or not (config_dir / group).is_dir():
            continue
        allowed = group_options(config_dir, group)
        for choice in value.strip("[]").split(","):
            choice = choice.strip()
            if choice and choice != "null" and not (config_dir / group / f"{choice}.yaml").is_file():
                fail(f"{key}={choice} is not a known option; allowed: {', '.join(allowed)}")
