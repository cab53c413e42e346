"""Every difflab command is `command(name, work)`: Hydra's main over conf/<name>.yaml, with the checks and the
one-line errors that each command needs before and around its work."""

import sys
from collections.abc import Callable

import hydra

from difflab.cli import CONFIG_DIR, reporting_errors
from difflab.cli.checks import check_group_overrides
from difflab.extras import check_extras


def command(name: str, work: Callable, *, argv: Callable[[list[str]], list[str]] | None = None,
            compose_check: bool = True) -> Callable[[], object]:
    """main() of the command that runs `work(cfg)` on conf/<name>.yaml composed with the command line.

    Before Hydra starts, main() lets `argv` rewrite sys.argv, then checks the group options of the command line
    and (with `compose_check`) composes the config once, so that a bad option, key or value is one line before
    any work. Around the work, a missing extra and any ConfigError become one 'error: ...' line. What work returns
    goes back to Hydra: the value a sweeper minimises."""

    def job(cfg):
        check_extras(cfg)
        return work(cfg)

    # Hydra names the job after its task function's module: the job's log is then <name>.log (train.log)
    job.__module__ = f"difflab.cli.{name}"
    run = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=name)(reporting_errors(job))

    def main():
        if argv is not None:
            sys.argv = argv(sys.argv)
        check_group_overrides(sys.argv[1:], CONFIG_DIR, name if compose_check else None)
        return run()

    return main
