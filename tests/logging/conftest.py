"""W&B without an account or network: every W&B folder inside tmp_path, no credentials anywhere."""

import pytest


@pytest.fixture
def no_wandb_account(tmp_path, monkeypatch):
    """No credentials (no WANDB_API_KEY, ~/.netrc or key in wandb's settings) and wandb's folders in tmp_path; the
    settings and session credentials a test's wandb.init changes are put back afterwards."""
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "NETRC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    settings = wandb_setup.singleton().settings
    for key in ("api_key", "identity_token_file", "base_url"):  # restored at teardown
        monkeypatch.setattr(settings, key, getattr(settings, key))
    monkeypatch.setattr(settings, "api_key", None)
    wbauth.unauthenticate_session(update_settings=False)
    yield
    import wandb

    if wandb.run is not None:  # a failed test must not leave its run to the next one
        wandb.finish()
    wbauth.unauthenticate_session(update_settings=False)  # what an online wandb.init loaded


@pytest.fixture
def offline_wandb(no_wandb_account, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
