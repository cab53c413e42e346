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
            from difflab.sweeps.summary import record_job_error

            record_job_error(cause)  # a sweep's summary then says why this job stopped
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


def check_group_overrides(argv: list[str], config_dir, config_name: str | None = None) -> None:
    """Exit with one line if an override picks a config-group option that does not exist (model=foo), so that
    neither a run nor any job of a sweep starts. Handles +/~ prefixes and sweeps: lists (model=unet,dit),
    choice(...), and glob(...), which must match at least one option.
    With `config_name`, a single run's config is then composed once, so that a key the config lacks
    (optimizer.lrr=1) also fails with one line instead of Hydra's several."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob

    from difflab.sweeps.check import one_line

    config_dir = Path(config_dir)
    lines = [a for a in argv if "=" in a and not a.startswith(("-", "~", "hydra"))]
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
    except Exception as e:  # Hydra's parse errors span several lines
        fail(one_line(e))
    for override in overrides:
        key = override.key_or_group
        group = key.replace(".", "/")
        if "@" in group or not (config_dir / group).is_dir():
            continue
        allowed = group_options(config_dir, group)
        value = override.value()
        if isinstance(value, Glob):
            if not value.filter(allowed):
                fail(f"{override.input_line} matches no option; allowed: {', '.join(allowed)}")
            continue
        if override.is_sweep_override():
            choices = list(override.sweep_string_iterator())
        else:
            choices = value if isinstance(value, list) else [value]
        for choice in choices:
            if choice is not None and choice != "null" and not (config_dir / group / f"{choice}.yaml").is_file():
                fail(f"{key}={choice} is not a known option; allowed: {', '.join(allowed)}")
    if config_name:
        check_composes(argv, config_dir, config_name)


def check_composes(argv: list[str], config_dir: Path, config_name: str) -> None:
    """Compose a single run's config with its overrides; a failure exits with one line (Hydra prints several), as
    does a value of the wrong type for its key (sweeps/value_types.py).
    A multirun is checked job by job by its CheckSweep callback; a command line with Hydra's own flags
    (--config-dir/--config-name, as DDP's re-launched ranks and sweep files use, --cfg, ...) is left to Hydra."""
    if any(a.startswith("-") for a in argv):
        return
    from hydra import compose, initialize_config_dir

    from difflab.sweeps.check import one_line
    from difflab.sweeps.value_types import type_error

    overrides = [a for a in argv if not a.startswith("hydra")]
    try:
        with initialize_config_dir(str(config_dir), version_base="1.3"):
            message = type_error(overrides, lambda o: compose(config_name, overrides=o),
                                 lambda key: (config_dir / key.replace(".", "/")).is_dir())
    except Exception as e:  # Hydra's and OmegaConf's composition errors have no common base
        fail(one_line(e))
    if message:
        fail(message)
