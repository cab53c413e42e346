"""Weights & Biases logging that works without an account: offline unless asked, never a hang when asked online.

`wandb_logger` is conf/logger/wandb.yaml's `_target_`; `finish_wandb` ends the run when a job ends, so that each
job of a Hydra sweep is its own W&B run.
"""

import logging
import os
import socket
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from difflab.errors import ConfigError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0  # seconds to reach the W&B host before falling back to offline
INIT_TIMEOUT = 60.0  # wandb.init's own limit once the host answered (wandb's default is 90 s)


class DifflabWandbLogger(WandbLogger):
    """WandbLogger whose run config is the composed config at the top level.

    DiffusionModule's hparams hold the whole config nested as `run_config` (checkpoints rebuild models from it);
    Lightning sends those hparams to the logger at fit start, which would repeat the config under that one key.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self._wandb_init.get("anonymous") is None:  # wandb warns of any value given, None included
            self._wandb_init.pop("anonymous", None)

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        if isinstance(params, Mapping) and "run_config" in params:
            params = params["run_config"]
        super().log_hyperparams(params)


def wandb_logger(*, offline: bool = True, log_model: bool | str = False, name: str | None = None,
                 group: str | None = None, settings: dict | None = None, **kwargs) -> WandbLogger:
    """A WandbLogger, offline unless `offline=False` and credentials and the W&B host are both there.

    Online without credentials or without a reachable host logs one warning and runs offline (`wandb sync` later).
    WANDB_MODE=offline in the environment wins over `offline=False`, WANDB_MODE=disabled over both. In a Hydra
    multirun, `group` defaults to the sweep folder's name and `name` to the job's overrides. Other arguments go
    to WandbLogger and wandb.init (entity, tags, ...).
    """
    if offline and log_model:
        raise ConfigError(f"logger.wandb.log_model={log_model} needs logger.wandb.offline=false "
                          "(W&B uploads checkpoints only online)")
    env_mode = os.environ.get("WANDB_MODE", "")
    mode = "offline" if offline or env_mode in ("offline", "dryrun") else "online"
    mode = "disabled" if env_mode == "disabled" else mode
    if mode == "online" and (problem := _online_problem()):
        mode = "offline"
        where = Path(kwargs.get("save_dir") or kwargs.get("dir") or ".") / "wandb" / "offline-run-*"
        note = "; logger.wandb.log_model is ignored offline (checkpoints stay in checkpoints/)" if log_model else ""
        rank_zero_only(log.warning)(f"W&B: {problem}; logging offline instead (`wandb sync {where}` later){note}")
    sweep_group, job_name = _hydra_group_and_name()
    # The mode goes to wandb.init itself: WandbLogger(offline=True) would set WANDB_MODE for the whole process,
    # and the next job of a sweep could not go online.
    return DifflabWandbLogger(
        offline=False, log_model=log_model if mode == "online" else False, name=name or job_name,
        group=group or sweep_group, mode=mode, settings={"init_timeout": INIT_TIMEOUT, **(settings or {})}, **kwargs,
    )


def _online_problem() -> str | None:
    """Why a run cannot go online now, or None: credentials are looked up without network, then one TCP connect."""
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    base_url = wandb_setup.singleton().settings.base_url
    try:  # WANDB_API_KEY, ~/.netrc (`wandb login`) or wandb's settings files; no network, no prompt
        auth = wbauth.authenticate_session(host=base_url, source="difflab", prompt=False, update_session=False)
    except Exception as e:  # a malformed key: let the offline run go on and say why
        return f"the credentials found are unusable ({e})"
    if auth is None:
        return f"no credentials for {base_url} (set WANDB_API_KEY or run `wandb login`)"
    url = urlsplit(base_url)
    error = _connect_error(url.hostname, url.port or (443 if url.scheme == "https" else 80), CONNECT_TIMEOUT)
    return error and f"cannot reach {base_url} ({error})"


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
