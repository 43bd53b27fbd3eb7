"""The business's own sends (a bot, an agent), posted to ``POST /events/outbound``.

Meta never echoes messages sent through its API, so senders record them here. The body is
the provider-neutral ``contracts.outbound.OutboundMessage``; ingest checks its shape so a
sender learns of a mistake at once instead of through the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.settings import Settings
from ingest.errors import Unauthorized
from ingest.providers.base import bearer_token, no_body_check, same_secret, secret_value

name = "outbound"
kept_headers = ("content-type", "user-agent")
json_types: tuple[type, ...] = (dict, list)  # one send, or a list of sends


def check_headers(settings: Settings, headers: Mapping[str, str]) -> bool:
    expected = secret_value(settings.ingest_api_key, name, "INGEST_API_KEY")
    given = bearer_token(headers) or headers.get("x-api-key")
    if not given:
        raise Unauthorized("missing API key (Authorization: Bearer or X-API-Key)")
    if not same_secret(expected, given):
        raise Unauthorized("wrong API key")
    return True


verify_body = no_body_check


def channel(payload: Any) -> str | None:
    value = payload.get("channel_id") if isinstance(payload, dict) else None
    return str(value) if value else None
