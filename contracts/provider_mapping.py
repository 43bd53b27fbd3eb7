"""A declarative provider: a YAML file mapping a gateway's webhooks to our events.

Ingest (``ingest/providers/declarative.py``) reads its ``auth``, ``channel`` and body cap;
the normalize stage (``streams/normalize/providers/declarative.py``) its ``sections``. Both
load the same files, named in DECLARATIVE_PROVIDERS, at start-up: a file that does not
validate, or an expression that does not parse or calls an unknown function, stops the
process with the file and the field path, never later per message. The file holds no
secret: ``auth.secret_env`` names the environment variable that does.

Every expression is JMESPath (https://jmespath.org). A section's rules are searched in its
items (one message, one status); the ``unmapped`` ones in ``{section, kind, item, body}``.
The format, with a worked example, is ``examples/providers/README.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.errors import SafeError, describe_error
from contracts.mapping_expr import Expression, ExpressionError, compile_expression
from contracts.messages import DeliveryStatus, MessageType


def _expression(value: object) -> Expression:
    try:
        return compile_expression(value)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None  # pydantic adds the field path


Expr = Annotated[Expression, BeforeValidator(_expression)]

#: Names of the built-in providers (and their aliases), which a mapping may not take.
BUILT_IN_NAMES = frozenset({"whapi", "meta", "meta_cloud", "evolution", "outbound", "unknown"})
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")


class MappingFileError(SafeError):
    """A mapping file that cannot be used; names the file and the field paths, never values."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, hide_input_in_errors=True)


# --- authentication ------------------------------------------------------------------------


class _Auth(_Strict):
    #: the environment variable holding the secret (the YAML never holds it)
    secret_env: str

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV.fullmatch(value):
            raise ValueError("must be an environment variable name: upper-case letters, digits and _")
        return value


class BearerAuth(_Auth):
    """``Authorization: Bearer <secret>``, checked before the body is read."""

    type: Literal["bearer"]


class ApiKeyAuth(_Auth):
    """``<header>: <secret>``, checked before the body is read."""

    type: Literal["api_key"]
    header: str


class HmacAuth(_Auth):
    """``<header>: <prefix><digest>``, the HMAC of the raw body with the secret. The header
    must be there and well-formed before the body is read; the body then proves it."""

    type: Literal["hmac"]
    header: str
    algorithm: Literal["sha1", "sha256", "sha384", "sha512"]
    encoding: Literal["hex", "base64"] = "hex"
    #: what precedes the digest in the header, e.g. ``sha256=``
    prefix: str = ""


Auth = Annotated[BearerAuth | ApiKeyAuth | HmacAuth, Field(discriminator="type")]


# --- rules: one item -> one event ----------------------------------------------------------


class _Rule(_Strict):
    #: the rule applies to an item when this is truthy (absent: to every item)
    when: Expr | None = None
    #: the event's ``raw`` part (absent: the item itself; a non-object is kept as ``{"value": ...}``)
    raw: Expr | None = None


class _Who(_Rule):
    """Who and where: the chat (a WhatsApp address or phone number), the sender, and the
    direction. ``outbound`` true means the business sent it; absent or null, the sender's
    number is looked up in BUSINESS_NUMBERS. ``chat_name`` names a group, or the contact of
    an outbound 1:1 message; the contact of an inbound one is the sender (``sender_name``)."""

    chat: Expr | None = None
    chat_name: Expr | None = None
    sender: Expr | None = None
    sender_name: Expr | None = None
    outbound: Expr | None = None
    #: epoch seconds or milliseconds, or ISO 8601 (absent or null: when ingest received it)
    timestamp: Expr | None = None


class MediaMapping(_Strict):
    """A message's media. ``at`` selects the media object in the item; the other expressions
    are searched in it (absent ``at``: in the item)."""

    at: Expr | None = None
    id: Expr | None = None
    url: Expr | None = None
    mime_type: Expr | None = None
    size_bytes: Expr | None = None
    sha256: Expr | None = None  # hex or base64
    filename: Expr | None = None
    duration_seconds: Expr | None = None
    width: Expr | None = None
    height: Expr | None = None
    page_count: Expr | None = None
    animated: Expr | None = None


class LocationMapping(_Strict):
    at: Expr | None = None
    latitude: Expr
    longitude: Expr
    name: Expr | None = None
    address: Expr | None = None


class LinkMapping(_Strict):
    at: Expr | None = None
    url: Expr | None = None
    title: Expr | None = None
    description: Expr | None = None


class MessageRule(_Who):
    """A message: ``MessageReceived``, or ``MessageSent`` when outbound. ``type`` is the
    provider's type, looked up in ``types`` (case-insensitive); a type not there becomes a
    ``MessageUnsupported`` of that provider type, kept whole."""

    emit: Literal["message"]
    id: Expr
    chat: Expr
    type: Expr
    types: dict[str, MessageType]
    text: Expr | None = None
    caption: Expr | None = None
    media: MediaMapping | None = None
    location: LocationMapping | None = None
    #: a list of shared contacts, each a vCard string or an object with ``vcard`` and ``name``
    contacts: Expr | None = None
    link: LinkMapping | None = None
    reply_to: Expr | None = None
    forwarded: Expr | None = None

    @field_validator("types")
    @classmethod
    def _lower_keys(cls, value: dict[str, MessageType]) -> dict[str, MessageType]:
        return {k.lower(): v for k, v in value.items()}


class StatusRule(_Rule):
    """A delivery receipt of an outbound message: ``status`` looked up in ``statuses``
    (case-insensitive); ``deleted`` gives ``MessageDeleted``; a value not there becomes a
    ``MessageUnsupported`` of type ``status:<value>``."""

    emit: Literal["status"]
    target: Expr
    chat: Expr
    status: Expr
    statuses: dict[str, DeliveryStatus | Literal["deleted"]]
    timestamp: Expr | None = None
    #: a list of objects with ``code``, ``title``, ``message``, ``details``
    errors: Expr | None = None

    @field_validator("statuses")
    @classmethod
    def _lower_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {k.lower(): v for k, v in value.items()}


class ReactionRule(_Who):
    """A reaction to ``target``; an empty ``emoji`` removes it."""

    emit: Literal["reaction"]
    chat: Expr
    target: Expr
    emoji: Expr
    id: Expr | None = None


class EditRule(_Who):
    """A new text of message ``target``. No chat (absent or null): the target is found by its id."""

    emit: Literal["edit"]
    target: Expr
    new_text: Expr
    id: Expr | None = None


class DeleteRule(_Who):
    """The deletion of message ``target``. No chat (absent or null): the target is found by its id."""

    emit: Literal["delete"]
    target: Expr
    id: Expr | None = None


class EventRule(_Rule):
    """A fact that is no message: a ``ProviderEventUnsupported``, kept whole and counted.
    Its expressions are searched in ``{section, kind, item, body}``, as ``unmapped``'s."""

    emit: Literal["event"]
    provider_type: Expr | None = None
    chat: Expr | None = None
    key: Expr | None = None
    timestamp: Expr | None = None


Rule = Annotated[
    MessageRule | StatusRule | ReactionRule | EditRule | DeleteRule | EventRule, Field(discriminator="emit")
]


class Section(_Strict):
    """The top-level member ``name`` of a delivery (or ``items``, searched in the body): a list
    of items, or one. Each item takes the first rule whose ``when`` holds; an item no rule
    takes becomes a ``ProviderEventUnsupported`` (see ``unmapped``)."""

    name: str
    items: Expr | None = None
    rules: list[Rule] = Field(min_length=1)


class Unmapped(_Strict):
    """How an item no rule takes, and every item of a top-level member that is neither a
    section nor in ``envelope``, becomes a ``ProviderEventUnsupported``. Searched in
    ``{section, kind, item, body}``. ``chat`` may give a list: its first WhatsApp address
    names the chat. Defaults: type ``kind || section``, key ``item.id``, time ``item.timestamp``."""

    provider_type: Expr = Field(default_factory=lambda: compile_expression("kind || section"))
    chat: Expr | None = None
    key: Expr = Field(default_factory=lambda: compile_expression("item.id"))
    timestamp: Expr = Field(default_factory=lambda: compile_expression("item.timestamp"))


class ProviderMapping(_Strict):
    """One declarative provider, served at ``/webhooks/{name}``."""

    name: str
    auth: Auth
    #: the business channel (account, instance, number) the delivery belongs to
    channel: Expr
    #: the delivery's kind, e.g. ``messages.post``: the type of its unsupported events
    kind: Expr | None = None
    #: top-level members that are the envelope, not facts (``channel_id``, ``event``)
    envelope: list[str] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    unmapped: Unmapped = Field(default_factory=Unmapped)
    #: the largest body accepted (never above INGEST_MAX_BODY_BYTES)
    max_body_bytes: int | None = Field(None, ge=1024)
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _route_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("must be 1-40 of a-z 0-9 _ - (starting with a letter or digit): it is a URL path segment")
        if value in BUILT_IN_NAMES:
            raise ValueError("is the name of a built-in provider")
        return value

    @model_validator(mode="after")
    def _sections_once(self) -> ProviderMapping:
        names = [s.name for s in self.sections]
        if len(names) != len(set(names)) or set(names) & set(self.envelope):
            raise ValueError("a section is named twice, or is also in envelope")
        return self


def load_mapping(path: Path) -> ProviderMapping:
    """The mapping in ``path``; raises ``MappingFileError`` naming the file and what is wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingFileError(f"provider mapping {path}: cannot be read ({type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise MappingFileError(f"provider mapping {path}: not YAML ({type(exc).__name__}{where})") from None
    if not isinstance(document, dict):
        raise MappingFileError(f"provider mapping {path}: must be a YAML mapping, not {type(document).__name__}")
    try:
        return ProviderMapping.model_validate(document)
    except ValidationError as exc:
        raise MappingFileError(f"provider mapping {path}: {_problems(exc)}") from None


def load_mappings(paths: list[Path]) -> dict[str, ProviderMapping]:
    """The mappings of ``paths`` by name; two files of one name are refused."""
    found: dict[str, ProviderMapping] = {}
    for path in paths:
        mapping = load_mapping(path)
        if mapping.name in found:
            raise MappingFileError(f"provider mapping {path}: name is taken by another file")
        found[mapping.name] = mapping
    return found


def _problems(exc: ValidationError) -> str:
    """Each error as ``field.path: message``; messages are this module's or pydantic's, no input."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:8]:
        where = ".".join(str(p) for p in error["loc"]) or "(file)"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "") if parts else describe_error(exc)
