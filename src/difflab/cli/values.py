"""Type checks of command-line values, before any work starts.

The configs carry no schema, so unchecked, a value of the wrong type (`optimizer.lr=abc`, `trainer.max_steps=1.5`)
would fail only where it is used, deep in an optimizer or in Lightning, with a multi-line error. Two sources stand in
for a schema, in this order:
  1. the type annotation of the parameter the key feeds: the `_target_` of the key's node (Trainer's
     `precision: Literal[...]`, a sampler's `eta: float`), where it decides;
  2. the key's default in the config composed without the command line's value overrides (group choices kept):
     a key whose default is a bool, a number or a list takes only a value of that kind.
null is always let through: each key's own validation decides what it means (steps: null = every step).
"""

import inspect
import os
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Callable

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

_MISSING = object()


def value_overrides(overrides: list[str], is_group: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """Split single-value overrides into (group choices, key=value settings); deletions and additions of new
    keys (`~key`, `+key=...`) go with the groups: the composition itself checks them."""
    groups, values = [], []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        if is_group(key.split("@")[0]) or override.is_delete() or override.is_add() or override.is_force_add():
            groups.append(override.input_line)
        else:
            values.append(override.input_line)
    return groups, values


def matches(value, tp) -> bool | None:
    """Whether a config value fits a type annotation: True, False, or None where the annotation names a type a
    config value cannot be checked against (a Tensor, an Accelerator object, ...)."""
    if tp is typing.Any or tp is object:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        verdicts = [matches(value, a) for a in args]
        return True if True in verdicts else (None if None in verdicts else False)
    if origin is typing.Literal:
        return value in args and all(type(value) is not bool or type(a) is bool for a in args if a == value)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp in (os.PathLike,) or (isinstance(tp, type) and issubclass(tp, os.PathLike)):
        return isinstance(value, str)
    cls = origin or tp
    if isinstance(cls, type) and issubclass(cls, (list, tuple, Sequence)) and not issubclass(cls, str):
        return isinstance(value, ListConfig)
    if isinstance(cls, type) and issubclass(cls, (dict, Mapping)):
        return isinstance(value, DictConfig)
    return None


def describe(tp) -> str:
    """An annotation in words: 'an integer', 'one of 32, 'bf16-mixed', ... or null'."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        literals = [v for a in args if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)]
        others = [describe(a) for a in args if typing.get_origin(a) is not typing.Literal]
        words = ([describe(typing.Literal[tuple(literals)])] if literals else []) + others
        return " or ".join(dict.fromkeys(words))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    names = {type(None): "null", bool: "a bool (true/false)", int: "an integer", float: "a number", str: "a string"}
    if tp in names:
        return names[tp]
    cls = origin or tp
    if isinstance(cls, type) and issubclass(cls, (list, tuple, Sequence)):
        return "a list ([a,b,...])"
    if isinstance(cls, type) and issubclass(cls, (dict, Mapping)):
        return "a mapping ({k: v})"
    return getattr(tp, "__name__", str(tp))


def annotation(cfg: DictConfig, key: str):
    """The type annotation of the parameter `key` feeds, from its node's `_target_`; None if there is none."""
    parent, _, name = key.rpartition(".")
    if not parent or name.startswith("_"):
        return None
    target = OmegaConf.select(cfg, f"{parent}._target_", default=None, throw_on_resolution_failure=False)
    if not isinstance(target, str):
        return None
    try:
        obj = get_object(target)
        # a subclass that passes **kwargs on (difflab's Trainer) leaves the other annotations to its bases
        for fn in [c.__init__ for c in obj.__mro__] if inspect.isclass(obj) else [obj]:
            hints = typing.get_type_hints(fn)
            if name in hints:
                return hints[name]
    except Exception:  # an unimportable target fails with its own error when instantiated
        return None
    return None


def default_kind(default) -> tuple[Callable, str] | None:
    """(test, words) for what a key with this default takes, or None where anything goes (strings, null)."""
    if isinstance(default, bool):
        return (lambda v: isinstance(v, bool)), "a bool (true/false)"
    if isinstance(default, int):
        return (lambda v: isinstance(v, int) and not isinstance(v, bool)), "an integer"
    if isinstance(default, float):
        return (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)), "a number"
    if isinstance(default, ListConfig):
        return (lambda v: isinstance(v, ListConfig)), "a list ([a,b,...])"
    if isinstance(default, DictConfig):
        return (lambda v: isinstance(v, DictConfig)), "a mapping ({k: v})"
    return None


def leaf(cfg: DictConfig, key: str):
    try:
        return OmegaConf.select(cfg, key, default=_MISSING, throw_on_resolution_failure=False)
    except Exception:  # an interpolation that only resolves inside a run (hydra:...): not checked here
        return _MISSING


def type_error(overrides: list[str], compose: Callable[[list[str]], DictConfig],
               is_group: Callable[[str], bool]) -> str | None:
    """One line naming the first override whose value does not fit its key, or None.
    compose(overrides) -> the composed config (Hydra's compose with the config name bound)."""
    groups, values = value_overrides(overrides, is_group)
    if not values:
        return None
    cfg, defaults = compose(overrides), None
    last = dict(line.split("=", 1) for line in values)  # a key given twice takes its last value
    for key, text in last.items():
        value = leaf(cfg, key)
        if value is _MISSING or value is None:
            continue
        tp = annotation(cfg, key)
        verdict = None if tp is None else matches(value, tp)
        if verdict is False:
            return f"{key}={text} is not valid: {key} takes {describe(tp)}"
        if verdict is True:
            continue
        defaults = defaults if defaults is not None else compose(groups)
        default = leaf(defaults, key)
        kind = None if default is _MISSING else default_kind(default)
        if kind and not kind[0](value):
            shown = OmegaConf.to_container(default) if isinstance(default, (ListConfig, DictConfig)) else default
            return f"{key}={text} is not valid: {key} takes {kind[1]} (default: {shown})"
    return None
