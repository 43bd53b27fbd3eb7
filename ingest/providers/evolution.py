"""Evolution API: the instance's ``apikey`` travels in the body (and, when configured, as an
``apikey`` header); either must equal EVOLUTION_API_KEY."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from contracts.settings import Settings
from ingest.errors import MalformedBody, Unauthorized
from ingest.providers.base import same_secret, secret_value

name = "evolution"
kept_headers = ("content-type", "user-agent")
json_types: tuple[type, ...] = (dict,)


def verify(settings: Settings, headers: Mapping[str, str], body: bytes) -> None:
    expected = secret_value(settings.evolution_api_key, name, "EVOLUTION_API_KEY")
    given = headers.get("apikey")
    if given is None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedBody(f"body is not JSON: {exc}") from None
        given = payload.get("apikey") if isinstance(payload, dict) else None
    if not given:
        raise Unauthorized("missing apikey")
    if not same_secret(expected, str(given)):
        raise Unauthorized("wrong apikey")


def channel(payload: Any) -> str | None:
    value = payload.get("instance") if isinstance(payload, dict) else None
    return str(value) if value else None
