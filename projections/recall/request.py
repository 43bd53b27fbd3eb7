"""What a recall request must be before it reaches Postgres: its key first, then its query.

``refusal(settings, headers)`` says why a request may not recall (for the log; the caller
only hears "unauthorized"); it runs before anything of the query is looked at, so a
stranger learns nothing from validation errors. ``parse(chat, query_string)`` then
validates the chat key and the parameters into a ``RecallQuery``: text that Postgres cannot
store or that no person types (NUL, other control characters, surrogates, noncharacters,
bytes that are not UTF-8) is refused with ``InvalidQuery``, whose reason names fields and
error types, never the values.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import parse_qsl

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from contracts.settings import Settings

MAX_QUERY_CHARS = 4000
MAX_CHAT_CHARS = 512
MAX_FIELDS = 16

# C0 controls but tab, newline and carriage return; DEL and C1 controls; surrogates;
# U+FFFD (what undecodable bytes turn into) and every Unicode noncharacter.
_NONCHARACTERS = "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
_INVALID = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffd{_NONCHARACTERS}]")


def _valid_text(value: str) -> str:
    if _INVALID.search(value):
        raise PydanticCustomError("invalid_characters", "contains NUL, a control character or a noncharacter")
    return value


def _valid_key(value: str) -> str:
    """A chat key is one line of text: not even tab, newline or carriage return."""
    if any(c in value for c in "\t\n\r"):
        raise PydanticCustomError("invalid_characters", "contains NUL, a control character or a noncharacter")
    return _valid_text(value)


class InvalidQuery(Exception):
    """A malformed recall request; ``reason`` names fields and error types only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RecallQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    chat: Annotated[str, Field(min_length=1, max_length=MAX_CHAT_CHARS), AfterValidator(_valid_key)]
    q: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS), AfterValidator(_valid_text)]
    k: int = Field(10, ge=1)
    min_similarity: float | None = Field(None, ge=-1, le=1, allow_inf_nan=False)


def refusal(settings: Settings, headers: Mapping[str, str]) -> str | None:
    """Why the request may not recall (a reason for the log, never the key), or None."""
    expected = settings.recall_api_key.get_secret_value() if settings.recall_api_key else ""
    if not expected:
        return "recall is not configured: RECALL_API_KEY is not set"
    scheme, _, token = headers.get("authorization", "").partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    given = given or headers.get("x-api-key", "").strip()
    if not given:
        return "missing API key (Authorization: Bearer or X-API-Key)"
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return "wrong API key"
    return None


def parse(chat: str, query_string: bytes) -> RecallQuery:
    """The request's parameters, or ``InvalidQuery``. The raw query string is decoded
    strictly: bytes or escapes that are not UTF-8 are refused, not replaced."""
    try:
        text = query_string.decode("utf-8")
        params = dict(parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS))
    except UnicodeDecodeError:
        raise InvalidQuery("query string: invalid_utf8") from None
    except ValueError:  # more than MAX_FIELDS parameters
        raise InvalidQuery("query string: too_many_parameters") from None
    try:
        return RecallQuery.model_validate({**params, "chat": chat})
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or '.'}: {e['type']}" for e in exc.errors(include_input=False)]
        raise InvalidQuery("; ".join(problems)) from None
