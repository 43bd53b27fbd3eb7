"""A declarative provider's credentials: checked as the built-in ones are, the secret read
from the variable the mapping names, never from the file."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from pydantic import SecretStr

from contracts.provider_mapping import MappingFileError, ProviderMapping
from contracts.settings import Environment, Settings
from ingest import providers
from ingest.errors import Unauthorized
from ingest.providers.declarative import DeclarativeProvider, build

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "providers"
SECRET = "s3cret-for-the-gateway-0123456789abcdef"
BODY = b'{"event":"message.received","account_id":"lum-acme-01"}'


def provider(auth: dict, secret: str | None = SECRET) -> DeclarativeProvider:
    mapping = ProviderMapping.model_validate({"name": "gw", "auth": auth | {"secret_env": "GW_SECRET"}, "channel": "account_id"})
    return DeclarativeProvider(mapping, SecretStr(secret) if secret else None)


SETTINGS = Settings(_env_file=None)
HMAC = {"type": "hmac", "header": "X-Sig", "algorithm": "sha256", "prefix": "sha256="}


def test_bearer() -> None:
    p = provider({"type": "bearer"})
    assert p.check_headers(SETTINGS, {"authorization": f"Bearer {SECRET}"}) is True
    for headers, reason in (({}, "missing Bearer token"), ({"authorization": "Bearer nope"}, "wrong Bearer token")):
        with pytest.raises(Unauthorized, match=reason):
            p.check_headers(SETTINGS, headers)


def test_api_key_header() -> None:
    p = provider({"type": "api_key", "header": "X-Api-Key"})
    assert p.check_headers(SETTINGS, {"x-api-key": SECRET}) is True
    with pytest.raises(Unauthorized, match="wrong X-Api-Key header"):
        p.check_headers(SETTINGS, {"x-api-key": "nope"})
    with pytest.raises(Unauthorized, match="missing X-Api-Key header"):
        p.check_headers(SETTINGS, {"authorization": f"Bearer {SECRET}"})


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_hmac_header_first_then_the_body(encoding: str) -> None:
    p = provider(HMAC | {"encoding": encoding, "algorithm": "sha512", "prefix": ""})
    digest = hmac.new(SECRET.encode(), BODY, hashlib.sha512).digest()
    good = {"x-sig": digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()}
    assert p.check_headers(SETTINGS, good) is False  # only the body can prove it
    p.verify_body(SETTINGS, good, BODY)
    with pytest.raises(Unauthorized, match="X-Sig does not match the body"):
        p.verify_body(SETTINGS, good, BODY + b" ")
    assert "x-sig" in p.kept_headers


@pytest.mark.parametrize("value", [None, "md5=abc", "sha256=" + "0" * 63, "sha256=zz" + "0" * 62, "sha256=" + "0" * 66])
def test_hmac_header_missing_or_malformed_is_refused_before_the_body(value: str | None) -> None:
    p = provider(HMAC)
    with pytest.raises(Unauthorized, match="missing X-Sig header|X-Sig is not of the form sha256=<hex sha256 digest>"):
        p.check_headers(SETTINGS, {} if value is None else {"x-sig": value})


def test_unset_secret_refuses_every_delivery_naming_the_variable() -> None:
    with pytest.raises(Unauthorized, match="gw is not configured: GW_SECRET is not set"):
        provider({"type": "bearer"}, secret=None).check_headers(SETTINGS, {"authorization": f"Bearer {SECRET}"})


def test_the_secret_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMINOUS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("WHAPI_DECLARATIVE_TOKEN", "  ")
    settings = Settings(_env_file=None, declarative_providers=f"{EXAMPLES / 'luminous.yaml'},{EXAMPLES / 'whapi.yaml'}")
    registry = providers.registry(settings)
    assert {"whapi", "meta", "evolution", "luminous", "whapi-declarative"} <= set(registry)
    assert registry["luminous"].configured and not registry["whapi-declarative"].configured  # type: ignore[union-attr]
    assert registry["luminous"].channel({"account_id": "lum-acme-01"}) == "lum-acme-01"


def test_production_refuses_a_weak_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMINOUS_WEBHOOK_SECRET", "changeme")
    settings = Settings(_env_file=None, environment="development")
    mapping = providers.load_mappings([EXAMPLES / "luminous.yaml"])["luminous"]
    assert build(mapping, settings).configured
    production = settings.model_copy(update={"environment": Environment.PRODUCTION})
    with pytest.raises(MappingFileError, match="LUMINOUS_WEBHOOK_SECRET holds a placeholder value") as refused:
        build(mapping, production)
    assert "changeme" not in str(refused.value)
