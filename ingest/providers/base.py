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

    def check_headers(self, settings: Settings, headers: Mapping[str, str]) -> bool:
        """Runs before the body is read, so a stranger costs no memory: raise ``Unauthorized``
        when the headers already show the delivery is not authentic (a key missing or wrong,
        no signature, the provider not configured); True when they prove it authentic, False
        when only the body can (``verify_body``)."""

    def verify_body(self, settings: Settings, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``Unauthorized`` unless the body proves the delivery authentic. Runs on the
        raw bytes, read up to the provider's cap, when ``check_headers`` returned False."""

    def channel(self, payload: Any) -> str | None:
        """The business channel the delivery belongs to, if the body names it."""


class Redacting(Protocol):
    """A provider whose bodies carry a secret that must not be appended (Evolution's apikey)."""

    def redact(self, body: bytes, payload: Any) -> tuple[bytes, tuple[str, ...]]:
        """The body to append and the names of the members redacted from it (none: unchanged)."""


class Handshake(Protocol):
    """A provider with a GET subscription check (Meta)."""

    def handshake(self, settings: Settings, query: Mapping[str, str]) -> str:
        """Return the challenge to echo, or raise ``Forbidden``."""


def no_body_check(_settings: Settings, _headers: Mapping[str, str], _body: bytes) -> None:
    """``verify_body`` of a provider whose headers alone prove a delivery authentic."""


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
