"""`msgmem send`: post fixture webhook files to a running ingest, signed as the provider would.

Lets a newcomer try the system without a provider account. The credentials come from the
settings (environment / .env), or from the state file of a running `msgmem dev`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contracts.settings import Settings
from msgmem.devstate import running_state

PROVIDERS = ("whapi", "meta", "evolution", "outbound")


class SendError(RuntimeError):
    pass


@dataclass(frozen=True)
class Credentials:
    whapi_token: str | None = None
    meta_app_secret: str | None = None
    evolution_api_key: str | None = None
    ingest_api_key: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, fallback: dict[str, str] | None = None) -> "Credentials":
        fallback = fallback or {}

        def pick(name: str) -> str | None:
            value = getattr(settings, name)
            return value.get_secret_value() if value is not None else fallback.get(name)

        return cls(*(pick(n) for n in ("whapi_token", "meta_app_secret", "evolution_api_key", "ingest_api_key")))


def signed_headers(provider: str, body: bytes, creds: Credentials) -> dict[str, str]:
    """The headers the provider would send with ``body``: token, signature or API key."""
    headers = {"content-type": "application/json"}
    if provider == "whapi":
        headers["authorization"] = f"Bearer {_need(creds.whapi_token, 'WHAPI_TOKEN')}"
    elif provider == "meta":
        secret = _need(creds.meta_app_secret, "META_APP_SECRET").encode()
        headers["x-hub-signature-256"] = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    elif provider == "evolution":
        headers["apikey"] = _need(creds.evolution_api_key, "EVOLUTION_API_KEY")
    elif provider == "outbound":
        headers["authorization"] = f"Bearer {_need(creds.ingest_api_key, 'INGEST_API_KEY')}"
    else:
        raise SendError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
    return headers


def path_for(provider: str) -> str:
    return "/events/outbound" if provider == "outbound" else f"/webhooks/{provider}"


def _need(value: str | None, variable: str) -> str:
    if not value:
        raise SendError(f"{variable} is not set (environment, .env, or a running `msgmem dev`)")
    return value


def dev_state(settings: Settings) -> dict[str, Any]:
    """The running `msgmem dev`'s state (ingest URL, generated secrets), or nothing."""
    return running_state(settings.state_dir) or {}


def send_files(files: Sequence[Path], provider: str, url: str | None, settings: Settings) -> int:
    """Post each file's bytes unchanged; print one line per file; return how many failed."""
    state = dev_state(settings)
    base = url or state.get("ingest_url") or f"http://127.0.0.1:{settings.ingest_port}"
    creds = Credentials.from_settings(settings, state.get("credentials"))  # type: ignore[arg-type]
    failed = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in files:
            body = path.read_bytes()
            response = client.post(path_for(provider), content=body, headers=signed_headers(provider, body, creds))
            ok = response.status_code == 200
            failed += not ok
            print(f"{response.status_code} {path} {response.text[:200]}")
    return failed
