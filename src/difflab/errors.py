"""One error type for bad input, reported by the entry points as a single line."""


class ConfigError(ValueError):
    """A config value, file or checkpoint is wrong; the message names the key and what is allowed."""


class RunError(ConfigError):
    """A run cannot go on (its loss diverged, its disk is full): reported as one line like bad input, because the fix
    is a changed setting or freed space, not a traceback to read."""
