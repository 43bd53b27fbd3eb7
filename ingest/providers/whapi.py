"""Whapi.cloud: a Bearer token that we configure in the channel's webhook headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.settings import Settings
from ingest.errors import Unauthorized
from ingest.providers.base import bearer_token, no_body_check, same_secret, secret_value

name = "whapi"
kept_headers = ("content-type", "user-agent")
json_types: tuple[type, ...] = (dict,)


def check_headers(settings: Settings, headers: Mapping[str, str]) -> bool:
    expected = secret_value(settings.whapi_token, name, "WHAPI_TOKEN")
    token = bearer_token(headers)
    if token is None:
        raise Unauthorized("missing Bearer token")
    if not same_secret(expected, token):
        raise Unauthorized("wrong Bearer token")
    return True


verify_body = no_body_check


def channel(payload: Any) -> str | None:
    value = payload.get("channel_id") if isinstance(payload, dict) else None
    return str(value) if value else None
