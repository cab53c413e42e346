"""torch.compile settings: the one check of a compile mode (module.compile for training, compile for sampling)."""

from difflab.errors import ConfigError

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(value, key: str) -> str | None:
    """The torch.compile mode a config value asks for: None (eager) for null / false, 'default' for true, else the
    mode named; anything else is a one-line ConfigError naming `key`."""
    if value is None or value is False:
        return None
    mode = "default" if value is True else value
    if mode not in COMPILE_MODES:
        raise ConfigError(f"{key}={value} is not valid; allowed: null (eager), true, {', '.join(COMPILE_MODES)}")
    return mode
