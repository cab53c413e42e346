"""Weights & Biases logging: online when this machine is logged in to W&B, offline otherwise, never a hang.

`wandb_logger` is conf/logger/wandb.yaml's `_target_`; `finish_wandb` ends the run when a job ends, so that each
job of a Hydra sweep is its own W&B run.
"""

import os
import socket
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from difflab.errors import ConfigError

MODES = ("auto", "online", "offline")
CONNECT_TIMEOUT = 3.0  # seconds to reach the W&B host before starting offline instead
# wandb.init's own limit once the host answered (wandb's default is 90 s); past it the run goes on offline.
INIT_TIMEOUT = 10.0


class DifflabWandbLogger(WandbLogger):
    """WandbLogger whose run config is the composed config at the top level, and whose online start, if it fails
    or times out, starts the run offline instead (one line on stdout) rather than stopping the training.

    DiffusionModule's hparams hold the whole config nested as `run_config` (checkpoints rebuild models from it);
    Lightning sends those hparams to the logger at fit start, which would repeat the config under that one key.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self._wandb_init.get("anonymous") is None:  # wandb warns of any value given, None included
            self._wandb_init.pop("anonymous", None)

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None and self._wandb_init.get("mode") == "online":
            try:
                return super().experiment
            except Exception as e:  # CommError when wandb.init times out, AuthenticationError for a refused key
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                note = "; logger.wandb.log_model is ignored offline" if self._log_model else ""
                _say(f"wandb: offline (the online start failed: {first}; `wandb sync {_sync_dir(self._save_dir)}` "
                     f"uploads later{note})")
                self._wandb_init["mode"] = "offline"
                self._log_model = False
        return super().experiment

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        if isinstance(params, Mapping) and "run_config" in params:
            params = params["run_config"]
        super().log_hyperparams(params)


def wandb_logger(*, mode: str = "auto", log_model: bool | str = False, name: str | None = None,
                 group: str | None = None, settings: dict | None = None, **kwargs) -> WandbLogger:
    """A WandbLogger that logs online when credentials are there and the W&B host answers, else offline.

    `mode`: auto (online when logged in), online, offline; which one the run got, and why, is one line on stdout.
    WANDB_MODE=offline in the environment wins over the mode, WANDB_MODE=disabled over both. In a Hydra multirun,
    `group` defaults to the sweep folder's name and `name` to the job's overrides. Other arguments go to WandbLogger
    and wandb.init (entity, tags, ...).
    """
    chosen, why = choose_mode(mode)
    if chosen == "offline" and mode == "offline" and log_model:
        raise ConfigError(f"logger.wandb.log_model={log_model} needs logger.wandb.mode=auto or online "
                          "(W&B uploads checkpoints only online)")
    if chosen == "online" and (problem := _unreachable()):
        chosen, why = "offline", problem
    if chosen == "online":
        _say(f"wandb: online ({why})")
    elif chosen == "offline":
        note = "; logger.wandb.log_model is ignored offline" if log_model else ""
        where = _sync_dir(kwargs.get("save_dir") or kwargs.get("dir"))
        _say(f"wandb: offline ({why}; `wandb sync {where}` uploads later{note})")
    else:
        _say(f"wandb: disabled ({why})")
    sweep_group, job_name = _hydra_group_and_name()
    # The mode goes to wandb.init itself: WandbLogger(offline=True) would set WANDB_MODE for the whole process,
    # and the next job of a sweep could not go online.
    return DifflabWandbLogger(
        offline=False, log_model=log_model if chosen == "online" else False, name=name or job_name,
        group=group or sweep_group, mode=chosen, settings={"init_timeout": INIT_TIMEOUT, **(settings or {})},
        **kwargs,
    )


def choose_mode(mode: str = "auto") -> tuple[str, str]:
    """(online | offline | disabled, why in a few words) for logger.wandb.mode; no network, no prompt.

    Logged in means credentials wandb itself would use without asking: WANDB_API_KEY (or an identity token file),
    an entry for the W&B host in ~/.netrc (`wandb login` writes it), or an API key in wandb's settings."""
    if mode not in MODES:
        raise ConfigError(f"logger.wandb.mode={mode} is not valid; allowed: auto (online when logged in), online, "
                          "offline")
    env = os.environ.get("WANDB_MODE", "")
    if env == "disabled":
        return "disabled", "WANDB_MODE=disabled"
    if env in ("offline", "dryrun"):
        return "offline", f"WANDB_MODE={env}"
    if mode == "offline":
        return "offline", "logger.wandb.mode=offline"
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    base_url = wandb_setup.singleton().settings.base_url
    try:
        auth = wbauth.authenticate_session(host=base_url, source="difflab", prompt=False, update_session=False)
    except Exception as e:  # a malformed key: the offline run goes on, and says why
        return "offline", f"the W&B credentials found are unusable: {e}"
    if auth is None:
        return "offline", f"no W&B credentials for {base_url}: set WANDB_API_KEY or run `wandb login`"
    return "online", f"logged in to {base_url}"


def _unreachable() -> str | None:
    """Why the W&B host cannot be reached now (one TCP connection, at most CONNECT_TIMEOUT s), or None."""
    from wandb.sdk import wandb_setup

    base_url = wandb_setup.singleton().settings.base_url
    url = urlsplit(base_url)
    error = _connect_error(url.hostname, url.port or (443 if url.scheme == "https" else 80), CONNECT_TIMEOUT)
    return error and f"cannot reach {base_url}: {error}"


def _sync_dir(save_dir) -> str:
    """Where an offline run of this logger is written, as `wandb sync` takes it."""
    return str(Path(save_dir or ".") / "wandb" / "offline-run-*")


@rank_zero_only
def _say(message: str) -> None:
    print(message, flush=True)  # stdout, as the precision line: stderr is kept for a bad config's one-line error


def _connect_error(host: str, port: int, timeout: float) -> str | None:
    """None if a TCP connection to host:port opens within `timeout` seconds (name lookup included), else why not."""
    outcome = []  # one entry once the attempt ends: None (connected) or the error

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(str(e) or type(e).__name__)

    thread = threading.Thread(target=connect, daemon=True)  # a name lookup can outlast the socket timeout
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def _hydra_group_and_name() -> tuple[str | None, str | None]:
    """(sweep folder name in a Hydra multirun else None, the job's overrides or None)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, None
    hydra_cfg = HydraConfig.get()
    group = Path(hydra_cfg.sweep.dir).name if hydra_cfg.mode == RunMode.MULTIRUN else None
    return group, hydra_cfg.job.get("override_dirname") or None


def finish_wandb(trainer) -> None:
    """Finish this process's W&B run, if a WandbLogger started one (rank zero); failed if an exception is active."""
    if not (trainer.is_global_zero and any(isinstance(lg, WandbLogger) for lg in trainer.loggers)):
        return
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=1 if sys.exc_info()[0] is not None else 0)
