"""Meta WhatsApp Cloud API: ``X-Hub-Signature-256`` is HMAC-SHA256 of the raw body with the
app secret; subscriptions are confirmed by a GET handshake with the verify token.

The signature covers the body, so the body is read before it can be verified: only up to
INGEST_META_MAX_BODY_BYTES (Meta documents payloads of up to 3 MB), and only when the
signature header is there and well-formed."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from contracts.settings import Settings
from ingest.errors import Forbidden, Unauthorized
from ingest.providers.base import same_secret, secret_value

name = "meta"
kept_headers = ("content-type", "x-hub-signature-256", "user-agent")
json_types: tuple[type, ...] = (dict,)


_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


def check_headers(settings: Settings, headers: Mapping[str, str]) -> bool:
    secret_value(settings.meta_app_secret, name, "META_APP_SECRET")
    _signature(headers)
    return False  # only the body can prove it


def verify_body(settings: Settings, headers: Mapping[str, str], body: bytes) -> None:
    secret = secret_value(settings.meta_app_secret, name, "META_APP_SECRET")
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    if not same_secret(expected, _signature(headers).lower()):
        raise Unauthorized("signature does not match the body")


def _signature(headers: Mapping[str, str]) -> str:
    signature = headers.get("x-hub-signature-256")
    if not signature:
        raise Unauthorized("missing X-Hub-Signature-256")
    match = _SIGNATURE.fullmatch(signature)
    if match is None:
        raise Unauthorized("X-Hub-Signature-256 is not of the form sha256=<64 hex digits>")
    return match.group(1)


def handshake(settings: Settings, query: Mapping[str, str]) -> str:
    if query.get("hub.mode") != "subscribe":
        raise Forbidden("hub.mode must be subscribe")
    expected = settings.meta_verify_token
    if expected is None or not expected.get_secret_value():
        raise Forbidden("meta is not configured: META_VERIFY_TOKEN is not set")
    if not same_secret(expected.get_secret_value().encode(), query.get("hub.verify_token")):
        raise Forbidden("wrong hub.verify_token")
    challenge = query.get("hub.challenge")
    if not challenge:
        raise Forbidden("missing hub.challenge")
    return challenge


def channel(payload: Any) -> str | None:
    """The phone_number_id of the first change: one delivery concerns one business number."""
    try:
        for entry in payload.get("entry") or []:
            for change in entry.get("changes") or []:
                number = ((change.get("value") or {}).get("metadata") or {}).get("phone_number_id")
                if number:
                    return str(number)
    except AttributeError:
        return None
    return None
