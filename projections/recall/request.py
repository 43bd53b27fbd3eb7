"""What a recall request must be before it reaches Postgres: its key first, then its query.

``refusal(settings, headers)`` says why a request may not recall (for the log; the caller
only hears "unauthorized"); it runs before anything of the query is looked at, so a
stranger learns nothing from validation errors. ``parse(chat, query_string)`` then
validates the chat key and the parameters into a ``RecallQuery``: text that Postgres cannot
store or that no person types (NUL, other control characters, surrogates, noncharacters,
bytes that are not UTF-8) is refused with ``InvalidQuery``, whose reason names fields and
error types, never the values. The memory API's parameters (``ChatsQuery``, ``MessagesQuery``,
``ContextQuery``) follow the same rules; FastAPI and the MCP tools validate with them.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from contracts.settings import Settings

MAX_QUERY_CHARS = 4000
MAX_CHAT_CHARS = 512
MAX_FIELDS = 16
M = TypeVar("M", bound=BaseModel)

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


def _utc(value: datetime) -> datetime:
    """A time without a zone is UTC; one Postgres cannot hold once in UTC is refused."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("datetime_out_of_range", "out of range in UTC") from None


ChatKey = Annotated[str, Field(min_length=1, max_length=MAX_CHAT_CHARS), AfterValidator(_valid_key)]
QueryText = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS), AfterValidator(_valid_text)]
Name = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_valid_key)]
Cursor = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9_-]+$")]
Moment = Annotated[datetime, AfterValidator(_utc)]
PAGE_LIMIT = 200

_PARAMETERS = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class ChatRef(BaseModel):
    """A chat key given where no route path checks it (an MCP tool's argument)."""

    model_config = _PARAMETERS

    chat: ChatKey


class ChatsQuery(BaseModel):
    """``GET /chats``: filters (all optional) and a page."""

    model_config = _PARAMETERS

    provider: Name | None = Field(None, description="whapi, meta, evolution or a declarative provider's name")
    channel: Name | None = Field(None, description="the business channel (Meta: the phone_number_id)")
    phone: str | None = Field(None, pattern=r"^\+?[0-9][0-9 ()-]{0,30}$",
                              description="the contact's phone; spaces, dashes and a leading + are ignored")
    updated_since: Moment | None = Field(None, description="only chats updated at or after this time")
    limit: int = Field(50, ge=1, le=PAGE_LIMIT)
    cursor: Cursor | None = Field(None, description="next_cursor of the previous page")

    @property
    def phone_digits(self) -> str | None:
        return "".join(c for c in self.phone if c.isdigit()) if self.phone else None


class MessagesQuery(BaseModel):
    """``GET /chats/{chat}/messages``: a page of ``limit`` messages before or after a cursor (the latest without)."""

    model_config = _PARAMETERS

    limit: int = Field(50, ge=1, le=PAGE_LIMIT)
    before: Cursor | None = Field(None, description="older than this position (a page's older_cursor)")
    after: Cursor | None = Field(None, description="newer than this position (a page's newer_cursor)")

    @model_validator(mode="after")
    def _one_direction(self) -> "MessagesQuery":
        if self.before is not None and self.after is not None:
            raise PydanticCustomError("before_and_after", "give before or after, not both")
        return self


class ContextQuery(BaseModel):
    """``GET /chats/{chat}/context``; unset parameters take their CONTEXT_* setting."""

    model_config = _PARAMETERS

    q: QueryText | None = Field(None, description="what to recall; default: the contact's latest inbound text")
    max_tokens: int | None = Field(None, ge=1, le=1_000_000, description="token budget (CONTEXT_MAX_TOKENS)")
    window: int | None = Field(None, ge=1, le=500, description="last messages shown (CONTEXT_WINDOW_MESSAGES)")
    k: int | None = Field(None, ge=0, le=50, description="most recall snippets (CONTEXT_RECALL_SNIPPETS)")


class InvalidQuery(Exception):
    """A malformed recall request; ``reason`` names fields and error types only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RecallQuery(BaseModel):
    model_config = _PARAMETERS

    chat: ChatKey
    q: QueryText
    k: int = Field(10, ge=1)
    min_similarity: float | None = Field(None, ge=-1, le=1, allow_inf_nan=False)


def refusal(settings: Settings, headers: Mapping[str, str]) -> str | None:
    """Why the request may not recall (a reason for the log, never the key), or None."""
    expected = settings.recall_api_key.get_secret_value() if settings.recall_api_key else ""
    if not expected:
        return "recall is not configured: RECALL_API_KEY is not set"
    return key_refusal(expected, headers)


def admin_refusal(settings: Settings, headers: Mapping[str, str]) -> str | None:
    """As ``refusal``, for the /admin routes and ADMIN_API_KEY (a key of its own: an agent
    that may recall may not erase)."""
    expected = settings.admin_api_key.get_secret_value() if settings.admin_api_key else ""
    if not expected:
        return "admin routes are not configured: ADMIN_API_KEY is not set"
    return key_refusal(expected, headers)


def key_refusal(expected: str, headers: Mapping[str, str]) -> str | None:
    """Why the request's key is not ``expected`` (compared in constant time), or None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    given = given or headers.get("x-api-key", "").strip()
    if not given:
        return "missing API key (Authorization: Bearer or X-API-Key)"
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return "wrong API key"
    return None


def query_params(query_string: bytes) -> dict[str, str]:
    """The parameters of a raw query string, decoded strictly: bytes or escapes that are not
    UTF-8 are refused (``InvalidQuery``), not replaced."""
    try:
        text = query_string.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS))
    except UnicodeDecodeError:
        raise InvalidQuery("query string: invalid_utf8") from None
    except ValueError:  # more than MAX_FIELDS parameters
        raise InvalidQuery("query string: too_many_parameters") from None


def problems(errors: list[Any], skip: tuple[str, ...] = ()) -> str:
    """Validation errors as ``field.path: error_type; ...`` (locations starting with ``skip`` shortened)."""
    out = []
    for e in errors:
        loc = [str(part) for part in e["loc"]]
        loc = loc[1:] if len(loc) > 1 and loc[0] in skip else loc
        out.append(f"{'.'.join(loc) or '.'}: {e['type']}")
    return "; ".join(out)


def validated(model: type[M], values: Mapping[str, Any]) -> M:
    """``values`` as ``model`` or ``InvalidQuery`` naming the fields and error types."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidQuery(problems(exc.errors(include_input=False))) from None


def parse(chat: str, query_string: bytes) -> RecallQuery:
    """The recall request's parameters, or ``InvalidQuery``."""
    return validated(RecallQuery, {**query_params(query_string), "chat": chat})
