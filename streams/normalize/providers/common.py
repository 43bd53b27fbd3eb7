"""Event builders and the per-item loop shared by the provider normalisers.

Each normaliser only reads its provider's shape into ``Chat``, ``Author`` and ``Content``;
ids, chat keys and envelopes are made here, one way for every provider, so the same
message always gets the same ids whichever path it arrives by.

A delivery is read item by item (``Items``): a message or status that cannot be
normalised becomes an ``ItemFailure`` at its JSON path (``messages[2]``) while its
neighbours still become events. Only an unreadable envelope fails the whole delivery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from contracts.errors import describe_error, join_path
from contracts.ids import chat_key, event_id, message_id, normalise_jid, phone_digits, to_utc
from contracts.messages import (
    ContactCard,
    DeliveryStatus,
    LinkPreview,
    Location,
    MediaRef,
    MessageDeleted,
    MessageEdited,
    MessageEvent,
    MessageReceived,
    MessageSent,
    MessageUnsupported,
    ProviderEventUnsupported,
    ReactionAdded,
    ReactionRemoved,
    StatusError,
    StatusUpdated,
)
from contracts.raw import RawDelivery
from streams.normalize.errors import MalformedField, NormaliseError, UnparseableDelivery
from streams.normalize.filenames import document_filename

Json = dict[str, Any]

#: What reading one malformed item can raise (a pydantic ``ValidationError`` is a
#: ``ValueError``). Anything else is a bug in the normaliser and is not swallowed.
ITEM_ERRORS: tuple[type[Exception], ...] = (NormaliseError, KeyError, IndexError, TypeError, ValueError, AttributeError)


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One item of a delivery that could not be normalised."""

    path: str  # the item's JSON path in the body: "messages[2]", "entry[0].changes[0].value.statuses[1]"
    error: str  # error types and field paths, never input values: "messages[2].timestamp: ValueError"


@dataclass(frozen=True, slots=True)
class Normalised:
    """A delivery's events, in body order, and the items that failed."""

    events: list[MessageEvent]
    failures: list[ItemFailure] = field(default_factory=list)


class Items:
    """Collects one delivery's events item by item; ``result()`` hands them over.

    ``build(item, *context)`` makes one item's event. An item that raises one of
    ``ITEM_ERRORS`` becomes an ``ItemFailure`` at its path and the loop goes on. The path
    string is only made for a failure, so a good item costs no more than a ``try``.
    """

    __slots__ = ("events", "failures")

    def __init__(self) -> None:
        self.events: list[MessageEvent] = []
        self.failures: list[ItemFailure] = []

    def each(self, path: str, items: Any, build: Callable[..., MessageEvent], *context: Any) -> None:
        """Every item of the list ``items`` (absent or empty: none); a non-list fails ``path`` itself."""
        if not items:
            return
        if not isinstance(items, list):
            self.failures.append(ItemFailure(path, f"{path}: not a list ({type(items).__name__})"))
            return
        append = self.events.append
        for index, item in enumerate(items):
            try:
                append(build(item, *context))
            except ITEM_ERRORS as exc:
                self.fail(f"{path}[{index}]", exc)

    def one(self, path: str, item: Any, build: Callable[..., MessageEvent], *context: Any) -> None:
        """A single item at ``path`` (Evolution's ``data`` object)."""
        try:
            self.events.append(build(item, *context))
        except ITEM_ERRORS as exc:
            self.fail(path, exc)

    def within(self, path: str, items: Any, visit: Callable[..., None], *context: Any) -> None:
        """Containers of items (Meta's ``entry[]``, ``changes[]``): ``visit(self, item, item_path, *context)``
        adds the container's own items; if it raises, the container fails at its path."""
        if not items:
            return
        if not isinstance(items, list):
            self.failures.append(ItemFailure(path, f"{path}: not a list ({type(items).__name__})"))
            return
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            try:
                visit(self, item, item_path, *context)
            except ITEM_ERRORS as exc:
                self.fail(item_path, exc)

    def fail(self, path: str, exc: BaseException) -> None:
        self.failures.append(ItemFailure(path, describe(path, exc)))

    def result(self) -> Normalised:
        return Normalised(self.events, self.failures)


def describe(path: str, exc: BaseException) -> str:
    """The error of the item at ``path`` by error type and field path, never by value
    (``contracts.errors.describe_error``); a ``MalformedField`` names its field under ``path``."""
    if isinstance(exc, MalformedField):
        return f"{join_path(path, exc.field)}: {exc.problem}"
    return describe_error(exc, path)


@dataclass(frozen=True)
class Chat:
    chat_id: str
    is_group: bool = False
    group_name: str | None = None
    contact_phone: str | None = None
    contact_name: str | None = None

    @classmethod
    def from_jid(cls, raw: str, *, group_name: str | None = None, contact_name: str | None = None) -> Chat:
        jid = normalise_jid(raw)
        if jid.is_group:
            return cls(jid.chat_id, True, group_name=group_name)
        return cls(jid.chat_id, contact_phone=jid.phone, contact_name=contact_name)


#: The chat of an event whose provider did not say which chat (``ChatEvent.chat_id == ""``).
UNNAMED_CHAT = Chat("")


def chat_id_of(value: Any) -> str | None:
    """The chat id of a WhatsApp address, or None when ``value`` is not one: for the chat an
    unmodelled event mentions, which must never fail the event that keeps it."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value)
    try:
        jid = normalise_jid(text)
    except ValueError:
        return None
    # A phone, a group, a lid or another @address; not some other id (a call's, a label's).
    return jid.chat_id if jid.phone or jid.is_group or jid.is_lid or "@" in text else None


@dataclass(frozen=True)
class Author:
    """Who did it; ``outbound`` means the business (its phone, app, API or bot)."""

    outbound: bool
    sender_id: str | None = None
    sender_name: str | None = None


@dataclass(frozen=True)
class Content:
    message_type: str
    text: str | None = None
    caption: str | None = None
    media: MediaRef | None = None
    location: Location | None = None
    contacts: tuple[ContactCard, ...] = ()
    link: LinkPreview | None = None


@dataclass(frozen=True)
class Source:
    """The delivery being normalised and the business channel it belongs to."""

    provider: str
    channel: str
    delivery: RawDelivery

    def _base(self, chat: Chat, event_type: str, key: str, occurred_at: datetime, *qualifiers: str) -> Json:
        return {
            "event_id": event_id(self.provider, self.channel, key, event_type, *qualifiers),
            "chat_key": chat_key(self.provider, self.channel, chat.chat_id),
            "occurred_at": occurred_at,
            "received_at": self.delivery.received_at,
            "provider": self.provider,
            "channel_id": self.channel,
            "delivery_id": self.delivery.delivery_id,
            "chat_id": chat.chat_id,
            "is_group": chat.is_group,
            "group_name": chat.group_name,
            "contact_phone": chat.contact_phone,
            "contact_name": chat.contact_name,
        }

    def message_id(self, provider_message_id: str) -> str:
        return message_id(self.provider, self.channel, provider_message_id)

    def message(
        self, chat: Chat, author: Author, provider_message_id: str, occurred_at: datetime, content: Content,
        *, raw: Json, reply_to: str | None = None, forwarded: bool = False, origin: str | None = None,
        template: str | None = None,
    ) -> MessageReceived | MessageSent:  # fmt: skip
        model = MessageSent if author.outbound else MessageReceived
        extra: dict[str, Any] = {"origin": origin} if origin else {}
        if template and author.outbound:
            extra["template"] = template
        media = content.media
        if media is not None and media.filename is None and content.message_type == "document":
            media = media.model_copy(update={"filename": document_filename(provider_message_id, media.mime_type)})
        return model(
            **extra,
            **self._base(chat, model.model_fields["type"].default, provider_message_id, occurred_at),
            provider_message_id=provider_message_id,
            message_id=self.message_id(provider_message_id),
            sender_id=author.sender_id,
            sender_name=author.sender_name,
            message_type=content.message_type,
            text=content.text,
            caption=content.caption,
            media=media,
            location=content.location,
            contacts=content.contacts,
            link=content.link,
            reply_to_provider_message_id=reply_to or None,
            forwarded=forwarded,
            raw=raw,
        )

    def unsupported(
        self, chat: Chat, author: Author, occurred_at: datetime, *, provider_type: str, raw: Json,
        provider_message_id: str | None = None, key: str | None = None, reason: str | None = None,
    ) -> MessageUnsupported:  # fmt: skip
        """``key`` names the event when there is no provider message id (an unknown status, say)."""
        return MessageUnsupported(
            **self._base(chat, "message_unsupported", provider_message_id or key or "", occurred_at, provider_type),
            provider_message_id=provider_message_id,
            message_id=self.message_id(provider_message_id) if provider_message_id else None,
            sender_id=author.sender_id,
            sender_name=author.sender_name,
            origin="agent" if author.outbound else "user",
            direction="outbound" if author.outbound else "inbound",
            provider_type=provider_type,
            reason=reason,
            raw=raw,
        )

    def provider_event(
        self, provider_type: str, raw: Any, *, chat_id: str | None = None, key: str = "",
        occurred_at: datetime | None = None, reason: str | None = None,
    ) -> ProviderEventUnsupported:  # fmt: skip
        """A webhook event that is not a message. Its id comes from ``key`` (what the provider
        names it by, if anything) and its content, so a redelivery or a replay is the same event."""
        raw = raw if isinstance(raw, dict) else {"value": raw}
        digest = hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return ProviderEventUnsupported(
            event_id=event_id(self.provider, self.channel, key, "provider_event_unsupported", provider_type, digest),
            chat_key=chat_key(self.provider, self.channel, chat_id or ""),
            occurred_at=occurred_at or self.delivery.received_at,
            received_at=self.delivery.received_at,
            provider=self.provider,
            channel_id=self.channel,
            delivery_id=self.delivery.delivery_id,
            provider_type=provider_type,
            chat_id=chat_id,
            reason=reason,
            raw=raw,
        )

    def _targeted(self, target: str, author: Author, own_id: str | None, raw: Json) -> Json:
        return {
            "provider_message_id": own_id,
            "target_provider_message_id": target,
            "target_message_id": self.message_id(target),
            "direction": "outbound" if author.outbound else "inbound",
            "raw": raw,
        }

    def reaction(
        self, chat: Chat, author: Author, occurred_at: datetime, *, target: str, emoji: str | None,
        raw: Json, provider_message_id: str | None = None,
    ) -> ReactionAdded | ReactionRemoved:  # fmt: skip
        """An empty emoji is how every provider reports a removed reaction."""
        # The reaction's own id (when given) keeps react / unreact / react-again distinct.
        key, reactor = provider_message_id or target, author.sender_id or ""
        fields = self._targeted(target, author, provider_message_id, raw)
        people = {"reactor_id": author.sender_id, "reactor_name": author.sender_name}
        if emoji:
            return ReactionAdded(
                **self._base(chat, "reaction_added", key, occurred_at, reactor, emoji), **fields, **people, emoji=emoji
            )
        return ReactionRemoved(**self._base(chat, "reaction_removed", key, occurred_at, reactor), **fields, **people)

    def edited(
        self, chat: Chat, author: Author, occurred_at: datetime, *, target: str, new_text: str | None,
        raw: Json, provider_message_id: str | None = None,
    ) -> MessageEdited:  # fmt: skip
        qualifiers = () if provider_message_id else (new_text or "",)
        return MessageEdited(
            **self._base(chat, "message_edited", provider_message_id or target, occurred_at, *qualifiers),
            **self._targeted(target, author, provider_message_id, raw),
            sender_id=author.sender_id,
            sender_name=author.sender_name,
            new_text=new_text,
        )

    def deleted(
        self, chat: Chat, author: Author, occurred_at: datetime, *, target: str, raw: Json,
        provider_message_id: str | None = None,
    ) -> MessageDeleted:  # fmt: skip
        # Keyed by the target only: a revoke and a "deleted" status for it are one event.
        return MessageDeleted(
            **self._base(chat, "message_deleted", target, occurred_at),
            **self._targeted(target, author, provider_message_id, raw),
            sender_id=author.sender_id,
            sender_name=author.sender_name,
        )

    def status(
        self, chat: Chat, occurred_at: datetime, *, target: str, status: DeliveryStatus, raw: Json,
        errors: Iterable[StatusError] = (), outbound: bool = True,
    ) -> StatusUpdated:  # fmt: skip
        """``outbound`` False is the business's own receipt of a contact's message (Evolution reports those)."""
        return StatusUpdated(
            **self._base(chat, "status_updated", target, occurred_at, status),
            **self._targeted(target, Author(outbound=outbound), None, raw),
            status=status,
            errors=tuple(errors),
        )


def load_body(delivery: RawDelivery) -> Any:
    try:
        return orjson.loads(delivery.body)
    except orjson.JSONDecodeError as exc:
        where = f"{delivery.provider} delivery {delivery.delivery_id}"
        raise UnparseableDelivery(f"{where}: body is not JSON (at char {exc.pos})") from None


def when(value: Any, fallback: datetime, name: str = "timestamp") -> datetime:
    """A provider timestamp, or ``fallback`` (the delivery's receive time) when it has none.
    One that cannot be read raises ``MalformedField`` naming the field ``name``."""
    if value in (None, ""):
        return fallback
    try:
        return to_utc(value)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise MalformedField.unreadable(name, exc) from None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text else None


def status_errors(items: Any) -> list[StatusError]:
    errors = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            details = item.get("details") or (item.get("error_data") or {}).get("details")
            errors.append(
                StatusError(
                    code=item.get("code"),
                    title=as_str(item.get("title")),
                    message=as_str(item.get("message")),
                    details=as_str(details),
                )
            )
    return errors


def parse_vcard(vcard: str | None, fallback_name: str | None = None) -> ContactCard:
    """Name and phones of a vCard; a phone is its ``waid`` when present, else the number's digits."""
    name, family_given, phones = None, None, []
    for line in (vcard or "").replace("\r\n ", "").replace("\n ", "").splitlines():
        head, sep, value = line.partition(":")
        if not sep:
            continue
        prop, *params = head.split(";")
        prop = prop.rsplit(".", 1)[-1].upper()  # item1.TEL -> TEL
        if prop == "FN":
            name = value.strip() or name
        elif prop == "N":
            family_given = " ".join(p for p in reversed(value.split(";")[:2]) if p).strip() or None
        elif prop == "TEL":
            waid = next((p.split("=", 1)[1] for p in params if p.lower().startswith("waid=")), None)
            phone = phone_digits(waid) or phone_digits(value)
            if phone and phone not in phones:
                phones.append(phone)
    return ContactCard(name=name or fallback_name or family_given, phones=tuple(phones))
