"""One error type for bad input, reported by the entry points as a single line."""


class ConfigError(ValueError):
    """A config value, file or checkpoint is wrong; the message names the key and what is allowed."""
