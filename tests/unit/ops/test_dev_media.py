"""`msgmem dev` never lets the media worker use a generated webhook secret as a Whapi API token."""

from __future__ import annotations

from pathlib import Path

from contracts.settings import Settings
from msgmem.dev import dev_credentials, dev_media_env
from streams.media.agent import provider_access


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_a_generated_whapi_token_leaves_whapi_media_skipped(tmp_path: Path) -> None:
    bare = settings(state_dir=tmp_path)  # where the generated secrets are kept
    env = {name.upper(): value for name, value in dev_credentials(bare).items()} | dev_media_env(bare)
    assert env["WHAPI_TOKEN"] and env["WHAPI_API_URL"] == ""
    worker = settings(whapi_token=env["WHAPI_TOKEN"], whapi_api_url=env["WHAPI_API_URL"])
    assert provider_access(worker)["whapi"].unset == "WHAPI_API_URL is not set"


def test_a_configured_whapi_token_is_used() -> None:
    assert dev_media_env(settings(whapi_token="configured")) == {}
    assert dev_media_env(settings(whapi_api_token="configured")) == {}
    assert dev_media_env(settings(whapi_api_token="")) == {"WHAPI_API_URL": ""}
