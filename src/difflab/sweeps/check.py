"""Compose a sweep's configs before its first job, so that an unknown key stops the sweep with one line."""

import sys

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from difflab.cli import one_line
from difflab.cli.values import type_error


class CheckSweep(Callback):
    """Before the sweeper launches anything, compose the config with every value each swept key takes (the other
    keys at their first value; a range or an interval at its ends) and stop with 'error: <one line>' if one
    fails or gives a key a value of the wrong type (cli/values.py). The sweeper's own `params` (sweep configs,
    Optuna) are checked with the command line's overrides."""

    def on_multirun_start(self, config: DictConfig, config_name: str | None = None, **kwargs) -> None:
        params = OmegaConf.select(config, "hydra.sweeper.params") or {}
        lines = [*(f"{k}={v}" for k, v in params.items()), *config.hydra.overrides.task]
        loader = GlobalHydra.instance().config_loader()
        groups = set(loader.list_groups(""))
        for overrides in probe_overrides(lines, loader):
            try:
                message = type_error(overrides, lambda o: compose(config_name, overrides=o),
                                     lambda key: key.replace(".", "/") in groups or is_subgroup(loader, key))
            except Exception as e:  # Hydra's and OmegaConf's composition errors have no common base
                message = one_line(e)
            if message:
                print(f"error: sweep cannot compose its jobs: {message}", file=sys.stderr)
                sys.exit(2)


def is_subgroup(loader, key: str) -> bool:
    """Whether a dotted key names a config group (objective.weighting -> objective/weighting)."""
    parent, _, name = key.replace(".", "/").rpartition("/")
    return bool(parent) and name in loader.list_groups(parent)


def probe_overrides(lines: list[str], config_loader=None) -> list[list[str]]:
    """Override lists that together give every swept key each value of its list (ranges and intervals: both
    ends), the other keys at their first value. Globs over a group's options need Hydra's config_loader."""
    parsed = OverridesParser.create(config_loader=config_loader).parse_overrides(lines)
    choices = [c for c in map(values, parsed) if c]
    firsts = [c[0] for c in choices]
    probes = [firsts]
    for i, c in enumerate(choices):
        probes += [firsts[:i] + [v] + firsts[i + 1 :] for v in c[1:]]
    return probes


def values(override) -> list[str]:
    key = override.get_key_element()
    if not override.is_sweep_override():
        return [override.input_line]
    if override.is_interval_sweep():
        sweep = override.value()
        return [f"{key}={sweep.start}", f"{key}={sweep.end}"]
    if override.is_range_sweep():  # numbers: a key that takes one takes all; a range can be long
        numbers = list(override.sweep_string_iterator())
        return [f"{key}={v}" for v in dict.fromkeys([numbers[0], numbers[-1]])] if numbers else []
    # a list or a glob: group options, each with its own keys
    return [f"{key}={v}" for v in override.sweep_string_iterator()]
