"""Evolution API: the instance's ``apikey`` travels in the body (and, when configured, as an
``apikey`` header); either must equal EVOLUTION_API_KEY.

An ``apikey`` header is checked before the body is read; without one the body must be read
(up to INGEST_EVOLUTION_MAX_BODY_BYTES) to find the key. Either way the body's apikey is
redacted before the delivery is appended (``redact``), so no secret reaches wa.raw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from contracts.settings import Settings
from ingest.errors import MalformedBody, Unauthorized
from ingest.providers.base import same_secret, secret_value
from ingest.redact import redact_keys

name = "evolution"
kept_headers = ("content-type", "user-agent")
json_types: tuple[type, ...] = (dict,)

SECRET_MEMBER = "apikey"


def check_headers(settings: Settings, headers: Mapping[str, str]) -> bool:
    expected = secret_value(settings.evolution_api_key, name, "EVOLUTION_API_KEY")
    given = headers.get("apikey")
    if given is None:
        return False  # the key is in the body
    if not given or not same_secret(expected, given):
        raise Unauthorized("wrong apikey header")
    return True


def verify_body(settings: Settings, headers: Mapping[str, str], body: bytes) -> None:
    expected = secret_value(settings.evolution_api_key, name, "EVOLUTION_API_KEY")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"body is not JSON: {exc}") from None
    given = payload.get(SECRET_MEMBER) if isinstance(payload, dict) else None
    if not given:
        raise Unauthorized("missing apikey")
    if not same_secret(expected, str(given)):
        raise Unauthorized("wrong apikey")


def redact(body: bytes, payload: Any) -> tuple[bytes, tuple[str, ...]]:
    edited = redact_keys(body, payload, SECRET_MEMBER)
    return (body, ()) if edited is None else (edited, (SECRET_MEMBER,))


def channel(payload: Any) -> str | None:
    value = payload.get("instance") if isinstance(payload, dict) else None
    return str(value) if value else None
