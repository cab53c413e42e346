"""logger.wandb.mode: online when this machine is logged in to W&B (decided without network), offline otherwise, one
line on stdout saying which; an unreachable host or a failed online start goes offline within seconds."""

import socket
import time
from urllib.parse import urlsplit

import pytest

from difflab.errors import ConfigError
from difflab.loggers import _connect_error, choose_mode, wandb_logger
from tests.conftest import TINY, run_in_process

KEY = "k" * 40  # the format of a W&B API key; never sent anywhere by these tests


def base_url() -> str:
    from wandb.sdk import wandb_setup

    return wandb_setup.singleton().settings.base_url


def log_in(how: str, tmp_path, monkeypatch) -> None:
    """Credentials for the W&B host as each way of logging in leaves them."""
    if how == "WANDB_API_KEY":
        monkeypatch.setenv("WANDB_API_KEY", KEY)
    elif how == "netrc":  # what `wandb login` writes
        netrc = tmp_path / "home" / ".netrc"
        netrc.parent.mkdir(parents=True, exist_ok=True)
        netrc.write_text(f"machine {urlsplit(base_url()).netloc}\n  login user\n  password {KEY}\n")
        netrc.chmod(0o600)
    else:  # an API key in wandb's settings
        from wandb.sdk import wandb_setup

        monkeypatch.setattr(wandb_setup.singleton().settings, "api_key", KEY)


def test_without_credentials_the_run_is_offline_and_says_so(tmp_path, no_wandb_account, capsys):
    assert choose_mode("auto") == ("offline", f"no W&B credentials for {base_url()}: set WANDB_API_KEY or run "
                                              "`wandb login`")
    logger = wandb_logger(save_dir=tmp_path, project="difflab")  # mode auto, as conf/logger/wandb.yaml
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("wandb: offline (no W&B credentials for ")
    assert line.endswith(f"; `wandb sync {tmp_path}/wandb/offline-run-*` uploads later)")
    run = logger.experiment
    try:
        assert run.settings.mode == "offline"
        assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 1
    finally:
        run.finish()


@pytest.mark.parametrize("how", ["WANDB_API_KEY", "netrc", "settings"])
def test_credentials_choose_online_and_the_forced_modes_win(tmp_path, no_wandb_account, monkeypatch, how):
    log_in(how, tmp_path, monkeypatch)
    assert choose_mode("auto") == ("online", f"logged in to {base_url()}")
    assert choose_mode("online") == ("online", f"logged in to {base_url()}")
    assert choose_mode("offline") == ("offline", "logger.wandb.mode=offline")
    monkeypatch.setenv("WANDB_MODE", "offline")  # the environment wins, as in wandb itself
    assert choose_mode("online") == ("offline", "WANDB_MODE=offline")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert choose_mode("auto") == ("disabled", "WANDB_MODE=disabled")


def test_forced_online_without_credentials_logs_offline(tmp_path, no_wandb_account, capsys):
    logger = wandb_logger(save_dir=tmp_path, project="difflab", mode="online", log_model=True)
    assert logger._wandb_init["mode"] == "offline" and not logger._log_model
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("wandb: offline (no W&B credentials") and "log_model is ignored offline" in line


def test_forced_offline_with_credentials_logs_offline(tmp_path, no_wandb_account, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    assert wandb_logger(save_dir=tmp_path, project="difflab", mode="offline")._wandb_init["mode"] == "offline"
    assert capsys.readouterr().out.startswith("wandb: offline (logger.wandb.mode=offline; `wandb sync ")


@pytest.mark.parametrize("mode", ["sometimes", True, None])
def test_bad_mode_is_one_line_naming_the_choices(tmp_path, no_wandb_account, mode):
    with pytest.raises(ConfigError) as err:
        wandb_logger(save_dir=tmp_path, project="difflab", mode=mode)
    assert str(err.value) == (f"logger.wandb.mode={mode} is not valid; allowed: auto (online when logged in), "
                              "online, offline")


def test_log_model_with_forced_offline_is_refused(tmp_path, no_wandb_account):
    with pytest.raises(ConfigError, match=r"logger.wandb.log_model=True needs logger.wandb.mode=auto or online"):
        wandb_logger(save_dir=tmp_path, project="difflab", mode="offline", log_model=True)


def test_train_command_refuses_a_bad_mode_in_one_line(tmp_path, no_wandb_account, no_fit):
    proc = run_in_process("train", *TINY, f"hydra.run.dir={tmp_path}", "logger=wandb", "logger.wandb.mode=sometimes")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("error: logger.wandb.mode=sometimes is not valid; allowed: auto (online when "
                                   "logged in), online, offline")


def test_logged_in_but_host_unreachable_logs_offline_within_seconds(tmp_path, no_wandb_account, monkeypatch,
                                                                     capsys):
    from wandb.sdk import wandb_setup

    with socket.socket() as s:  # a local port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.setattr(wandb_setup.singleton().settings, "base_url", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    logger = wandb_logger(save_dir=tmp_path, project="difflab", log_model=True)
    assert time.monotonic() - started < 5
    assert logger._wandb_init["mode"] == "offline" and not logger._log_model
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"wandb: offline (cannot reach http://127.0.0.1:{port}: ")
    assert "log_model is ignored offline" in line and "`wandb sync " in line


@pytest.mark.slow
def test_online_start_that_times_out_goes_on_offline(tmp_path, no_wandb_account, monkeypatch, capsys):
    """A host that takes the connection but never answers: wandb.init gives up at its init_timeout, and the run
    starts offline instead of failing the training."""
    from wandb.sdk import wandb_setup

    monkeypatch.setenv("WANDB_API_KEY", KEY)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # the kernel completes the handshakes; nothing ever reads or answers
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        monkeypatch.setattr(wandb_setup.singleton().settings, "base_url", url)
        logger = wandb_logger(save_dir=tmp_path, project="difflab", settings={"init_timeout": 1.0})
        assert logger._wandb_init["mode"] == "online"
        started = time.monotonic()
        run = logger.experiment
    try:
        assert time.monotonic() - started < 10
        assert run.settings.mode == "offline" and logger.experiment is run
        run.log({"train/loss": 1.0})
    finally:
        run.finish()
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 1
    online, offline = capsys.readouterr().out.splitlines()
    assert online == f"wandb: online (logged in to {url})"
    assert offline.startswith("wandb: offline (the online start failed: ") and "`wandb sync " in offline


def test_connect_check_gives_up_within_its_timeout():
    started = time.monotonic()
    assert _connect_error("192.0.2.1", 443, timeout=0.5) is not None  # TEST-NET-1: never routed
    assert time.monotonic() - started < 1.5
