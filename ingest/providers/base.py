"""What a provider adapter is: how its deliveries are verified and which channel they name."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Protocol

from contracts.settings import Settings
from ingest.errors import Unauthorized


class Provider(Protocol):
    """One webhook source. Registered in ``ingest.providers.REGISTRY``; routes never change."""

    name: str
    #: HTTP headers (lower-case) kept on the wa.raw record, e.g. the signature to re-verify.
    kept_headers: tuple[str, ...]
    #: JSON types the body may be at its top level (``dict``: an object). Anything else is 400.
    json_types: tuple[type, ...]

    def verify(self, settings: Settings, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``Unauthorized`` unless the delivery is authentic. Runs on the raw bytes."""

    def channel(self, payload: Any) -> str | None:
        """The business channel the delivery belongs to, if the body names it."""


class Handshake(Protocol):
    """A provider with a GET subscription check (Meta)."""

    def handshake(self, settings: Settings, query: Mapping[str, str]) -> str:
        """Return the challenge to echo, or raise ``Forbidden``."""


def secret_value(settings_value: Any, provider: str, variable: str) -> bytes:
    if settings_value is None or not settings_value.get_secret_value():
        raise Unauthorized(f"{provider} is not configured: {variable} is not set")
    return settings_value.get_secret_value().encode()


def same_secret(expected: bytes, given: str | None) -> bool:
    """Constant-time comparison, so the time taken leaks nothing about the secret."""
    return given is not None and hmac.compare_digest(expected, given.encode())


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
