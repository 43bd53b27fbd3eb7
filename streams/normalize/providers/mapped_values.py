"""Searching a mapping's expressions in an item and reading what they found as the values
our events hold. Pure; a failure names the mapping's field, never the value found."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from contracts.ids import normalise_jid, phone_digits
from contracts.mapping_expr import Expression, SearchError
from streams.normalize.errors import MalformedField
from streams.normalize.providers.common import chat_id_of, when

_FORMATTED_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{4,}").fullmatch
_JSON = {dict: "object", list: "array", bool: "boolean", str: "string", int: "number", float: "number"}


class Missing(Exception):
    """A field the rule needs (an id, a chat, a target) was not found: the item is kept as an
    unsupported event rather than failed, since its content is not wrong, only unmapped."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def search(expr: Expression | None, data: Any, field: str) -> Any:
    """What ``expr`` finds in ``data`` (no expression: None)."""
    if expr is None:
        return None
    try:
        return expr.search(data)
    except SearchError as exc:
        raise MalformedField(field, f"SearchError {exc}") from None


def text(expr: Expression | None, data: Any, field: str) -> str | None:
    """A string (a number is written out); null or "" is None; an object, array or boolean fails."""
    return as_text(search(expr, data, field), field)


def as_text(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise MalformedField(field, f"not a string ({json_type(value)})")


def required(expr: Expression | None, data: Any, field: str) -> str:
    value = text(expr, data, field)
    if value is None:
        raise Missing(field)
    return value


def moment(expr: Expression | None, data: Any, fallback: datetime, field: str = "timestamp") -> datetime:
    """A timestamp (epoch seconds or ms, ISO 8601); none found: ``fallback``."""
    return when(search(expr, data, field), fallback, field)


def address(value: str | None, field: str) -> str | None:
    """The chat id of a WhatsApp address or phone number."""
    if value is None:
        return None
    try:
        return normalise_jid(plain_phone(value)).chat_id
    except ValueError:
        raise MalformedField(field, "not a WhatsApp address") from None


def plain_phone(value: str) -> str:
    """A phone number as people write it (``+1 555-000-1234``) as its digits; anything else
    (a WhatsApp address, a group id) unchanged. Gateways write numbers many ways."""
    return (phone_digits(value) or value) if _FORMATTED_PHONE(value) else value


def first_chat(value: Any) -> str | None:
    """The first WhatsApp address in ``value`` (one value, or a list of candidates)."""
    for candidate in value if isinstance(value, list) else [value]:
        if found := chat_id_of(candidate):
            return found
    return None


def json_type(value: Any) -> str:
    return "null" if value is None else _JSON.get(type(value), type(value).__name__)
