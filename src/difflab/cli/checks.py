"""Early checks of a command line, before Hydra starts any work: group options, user config folders, the plugins a
choice needs, and a single run's config composed once (unknown keys, values of the wrong type)."""

from contextlib import contextmanager
from pathlib import Path

from difflab.cli import CONFIG_DIR, fail, one_line


def user_config_dirs(argv: list[str], config_dir: Path = CONFIG_DIR) -> list[Path]:
    """The folders a command line adds to Hydra's config search path (--config-dir, folders in hydra.searchpath),
    checked: one that does not exist exits with one line, and so does a file there named like a shipped config,
    which Hydra would silently pass over (it searches the shipped configs first)."""
    from hydra._internal.utils import get_args_parser  # the parser hydra.main itself reads the command line with

    args, _ = get_args_parser().parse_known_args(argv)
    named = [("--config-dir", args.config_dir)] if args.config_dir is not None else []
    named += [("hydra.searchpath", p) for p in searchpath_folders(args.overrides)]
    dirs = []
    for flag, folder in named:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            fail(f"{flag} {folder} does not exist (or is not a folder); give a folder of config files such as "
                 "model/mynet.yaml")
        if path == config_dir.resolve():
            continue
        for shipped in sorted(config_dir.rglob("*.yaml")):
            rel = shipped.relative_to(config_dir)
            if (path / rel).is_file():
                fail(f"{flag} {folder}: {rel} has the name of a shipped config, which Hydra reads instead; "
                     f"give yours another name (e.g. {rel.with_name('my_' + rel.name)})")
        dirs.append(path)
    return dirs


def searchpath_folders(overrides: list[str]) -> list[str]:
    """The folders of a `hydra.searchpath=[...]` override: file:// entries, plain paths, pkg:// packages."""
    import importlib.util

    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [o for o in overrides if o.startswith("hydra.searchpath=")]
    try:
        entries = [e for o in OverridesParser.create().parse_overrides(lines) for e in o.value()]
    except Exception:  # a malformed search path is Hydra's to report
        return []
    folders = []
    for entry in map(str, entries):
        if entry.startswith("pkg://"):
            try:
                spec = importlib.util.find_spec(entry[len("pkg://"):].replace("/", "."))
            except ModuleNotFoundError:  # its parent package is missing: Hydra reports it
                spec = None
            folders += list(spec.submodule_search_locations or []) if spec else []
        else:
            folders.append(entry.removeprefix("file://"))
    return folders


def group_options(config_dirs: list[Path], group: str) -> list[str]:
    return sorted({p.stem for d in config_dirs for p in (d / group).glob("*.yaml")})


def check_group_overrides(argv: list[str], config_dir, config_name: str | None = None) -> None:
    """Exit with one line if an override picks a config-group option that does not exist (model=foo), so that
    neither a run nor any job of a sweep starts. Options come from the shipped configs and the user's folders
    (user_config_dirs). Handles +/~ prefixes and sweeps: lists (model=unet,dit), choice(...), and glob(...), which
    must match at least one option.
    With `config_name`, a single run's config is then composed once, so that a key the config lacks
    (optimizer.lrr=1) also fails with one line instead of Hydra's several."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob

    config_dirs = [Path(config_dir), *user_config_dirs(argv, Path(config_dir))]
    lines = [a for a in argv if "=" in a and not a.startswith(("-", "~", "hydra"))]
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
    except Exception as e:  # Hydra's parse errors span several lines
        fail(one_line(e))
    for override in overrides:
        key = override.key_or_group
        group = key.replace(".", "/")
        if "@" in group or not any((d / group).is_dir() for d in config_dirs):
            continue
        allowed = group_options(config_dirs, group)
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
            if choice is not None and choice != "null" and str(choice) not in allowed:
                fail(f"{key}={choice} is not a known option; allowed: {', '.join(allowed)}")
    if config_name:
        check_plugins(argv, config_dirs, config_name)
        check_composes(argv, config_dirs, config_name)


def without_config_dir(argv: list[str]) -> list[str]:
    """argv less its --config-dir / -cd flag and folder."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--config-dir", "-cd"):
            skip = True
        elif not a.startswith(("--config-dir=", "-cd=")):
            out.append(a)
    return out


@contextmanager
def hydra_searching(config_dirs: list[Path]):
    """Hydra set up, for compose(), with the search path hydra.main builds: the shipped configs, then the user's
    folders (as --config-dir adds them: a primary config may be there too)."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    version.setbase("1.3")
    search_path = create_config_search_path(str(config_dirs[0]))
    for d in config_dirs[1:]:
        search_path.prepend("command-line", f"file://{d}", anchor=SearchPathQuery(provider="schema"))
    Hydra.create_main_hydra2(task_name="difflab", config_search_path=search_path)
    try:
        yield
    finally:
        restore_gh_from_backup(backup)


def check_plugins(argv: list[str], config_dirs: list[Path], config_name: str) -> None:
    """Where the command line or its configs choose a Hydra plugin's config (hydra/sweeper=optuna, hydra/launcher=
    slurm) and the plugin is not installed, exit with one line naming the extra, not Hydra's list of options."""
    from difflab.extras import PLUGIN_CONFIGS, installed, needs

    missing = {name: extra for name, (module, extra) in PLUGIN_CONFIGS.items() if not installed(module)}
    if not missing:
        return
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import MissingConfigException
    from hydra.types import RunMode

    args, _ = get_args_parser().parse_known_args(argv)
    try:
        with hydra_searching(config_dirs):
            GlobalHydra.instance().hydra.compose_config(args.config_name or config_name, args.overrides,
                                                        run_mode=RunMode.MULTIRUN, validate_sweep_overrides=False)
    except Exception as e:  # anything else is reported by Hydra itself, as without the check
        while e is not None:
            if isinstance(e, MissingConfigException) and e.missing_cfg_file in missing:
                group, _, option = e.missing_cfg_file.rpartition("/")
                fail(needs(f"{group}={option}", missing[e.missing_cfg_file]))
            e = e.__cause__ or e.__context__


def check_composes(argv: list[str], config_dirs: list[Path], config_name: str) -> None:
    """Compose a single run's config with its overrides; a failure exits with one line (Hydra prints several), as
    does a value of the wrong type for its key (cli/values.py).
    A multirun is checked job by job by its CheckSweep callback; a command line with Hydra's own flags other than
    --config-dir (--config-name, as DDP's re-launched ranks and sweep files use, --cfg, ...) is left to Hydra."""
    argv = without_config_dir(argv)
    if any(a.startswith("-") for a in argv):
        return
    from hydra import compose

    from difflab.cli.values import type_error

    overrides = [a for a in argv if not a.startswith("hydra")]
    try:
        with hydra_searching(config_dirs):
            message = type_error(overrides, lambda o: compose(config_name, overrides=o),
                                 lambda key: any((d / key.replace(".", "/")).is_dir() for d in config_dirs))
    except Exception as e:  # Hydra's and OmegaConf's composition errors have no common base
        fail(one_line(e))
    if message:
        fail(message)
