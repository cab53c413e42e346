"""Construction checks the networks share: one-line ConfigErrors that name the config key."""

from difflab.errors import ConfigError


def divisors(n: int) -> str:
    """The divisors of n, listed for an error message's 'allowed:'."""
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def check_positive(values: dict) -> None:
    """Raise ConfigError for the first {config key: value} that is not a positive integer."""
    for key, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key}={value!r} is invalid; allowed: a positive integer")


def check_num_classes(num_classes) -> None:
    """model.num_classes is null (unconditional) or a positive integer (not a bool, which Python counts as one)."""
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise ConfigError(f"model.num_classes={num_classes!r} is invalid; allowed: null (unconditional) "
                          "or a positive integer such as ${data.num_classes}")
