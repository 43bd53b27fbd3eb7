"""WhatsApp Cloud API (Meta) webhooks -> wa.messages events.

One POST nests ``entry[] x changes[]``; a ``messages`` change holds inbound
``messages[]`` and/or ``statuses[]`` of the business's sends, an ``smb_message_echoes``
change holds ``message_echoes[]`` (sends from the WhatsApp Business app). Sends through
the Cloud API itself are never echoed: they reach us through ingest's outbound endpoint.
The channel is ``metadata.phone_number_id``. A ``messages`` change may also carry
``errors[]`` of its own (no message): each becomes a ``ProviderEventUnsupported``. ``history``
(the WhatsApp Business app's past chats, on coexistence onboarding) gives one
``MessageUnsupported`` per past message, under its own id, so a later version that models
them upgrades the rows in place. ``smb_app_state_sync``, ``user_preferences`` and ``calls``
give one ``ProviderEventUnsupported`` per item, with its chat; any other field (account,
template, quality and capability updates...) one per change, with no chat. The channel of
those is the change's phone_number_id when it names one, else the WhatsApp Business
Account id (``entry[].id``). The kinds table is in ``streams/normalize/README.md``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from contracts.ids import phone_digits, sha256_hex
from contracts.messages import ContactCard, Location, MediaRef, MessageEvent
from contracts.raw import RawDelivery
from streams.normalize.errors import MalformedField, UnparseableDelivery
from streams.normalize.providers.common import (
    Author,
    Chat,
    Content,
    Items,
    Json,
    Normalised,
    Source,
    as_int,
    as_str,
    chat_id_of,
    load_body,
    status_errors,
    when,
)

PROVIDER = "meta"  # as ingest names it (/webhooks/meta)
MESSAGE_FIELDS = ("messages", "smb_message_echoes")

_MEDIA = ("image", "video", "audio", "document", "sticker")
_STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "played", "failed": "failed"}


def normalise(delivery: RawDelivery, *, business_numbers: Collection[str] = frozenset()) -> Normalised:
    """Each message, echo and status on its own, at its path (``entry[0].changes[0].value.messages[1]``);
    an entry or change that cannot be read fails at its own path.

    ``business_numbers`` is unused: Meta says which side wrote a message by where it puts it.
    """
    body = load_body(delivery)
    if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
        raise UnparseableDelivery("not a WhatsApp Cloud API webhook: object is not whatsapp_business_account")
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise UnparseableDelivery("WhatsApp Cloud API webhook without entry[]")
    items = Items()
    items.within("entry", entries, _entry, delivery)
    if not items.events and not items.failures:  # no change at all: still one trace of the 200
        source = Source(PROVIDER, delivery.channel or "", delivery)
        items.events.append(source.provider_event("empty", body, reason="a delivery with no changes"))
    return items.result()


def _entry(items: Items, entry: Json, path: str, delivery: RawDelivery) -> None:
    items.within(f"{path}.changes", entry.get("changes"), _change, delivery, entry)


# Fields whose value holds a list of items that each concern one chat: field -> (list, chat of an item).
_PER_ITEM: dict[str, tuple[str, Any]] = {
    "smb_app_state_sync": ("state_sync", lambda i: (i.get("contact") or {}).get("phone_number")),
    "user_preferences": ("user_preferences", lambda i: i.get("wa_id")),
    "calls": ("calls", lambda i: i.get("to") if i.get("direction") == "BUSINESS_INITIATED" else i.get("from")),
}


def _change(items: Items, change: Json, path: str, delivery: RawDelivery, entry: Json) -> None:
    """``messages[]`` are always the contact's, ``message_echoes[]`` always the business's.
    A change that yields nothing else still leaves one event: none is dropped without a trace."""
    found = len(items.events) + len(items.failures)
    field = as_str(change.get("field")) or "unknown"
    value = change.get("value") if isinstance(change.get("value"), dict) else {}
    if field in MESSAGE_FIELDS and change.get("value") is not None and not value:
        raise MalformedField("value", f"not an object ({type(change['value']).__name__})")
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    if field in MESSAGE_FIELDS:
        channel = as_str(metadata.get("phone_number_id")) or delivery.channel
        if not channel:
            raise MalformedField.missing("value.metadata.phone_number_id")
        source = Source(PROVIDER, channel, delivery)
        names = _names(value.get("contacts"))
        items.each(f"{path}.value.messages", value.get("messages"), _message, source, names, False)
        items.each(f"{path}.value.message_echoes", value.get("message_echoes"), _message, source, names, True)
        items.each(f"{path}.value.statuses", value.get("statuses"), _status, source)
        items.each(f"{path}.value.errors", value.get("errors"), _error, source, f"{field}.errors")
    else:
        channel = as_str(metadata.get("phone_number_id")) or as_str(entry.get("id")) or delivery.channel or ""
        source = Source(PROVIDER, channel, delivery)
        if field == "history":
            items.within(f"{path}.value.history", value.get("history"), _history, source)
        elif field in _PER_ITEM:
            name, chat_of = _PER_ITEM[field]
            items.each(f"{path}.value.{name}", value.get(name), _item, source, field, chat_of)
    if len(items.events) + len(items.failures) == found:
        occurred_at = _lenient_when(value.get("timestamp") or entry.get("time"), delivery.received_at)
        items.events.append(
            source.provider_event(field, change, key=as_str(entry.get("id")) or "", occurred_at=occurred_at)
        )


def _lenient_when(value: Any, fallback: datetime) -> datetime:
    """A time for an unmodelled event: an unreadable one must not fail the event that keeps it."""
    try:
        return when(value, fallback)
    except MalformedField:
        return fallback


def _item(item: Any, source: Source, field: str, chat_of: Any) -> MessageEvent:
    record = item if isinstance(item, dict) else {"value": item}
    chat = chat_id_of(chat_of(record))
    occurred_at = _lenient_when(record.get("timestamp") or (record.get("metadata") or {}).get("timestamp"),
                                source.delivery.received_at)  # fmt: skip
    key = as_str(record.get("id")) or ""
    return source.provider_event(field, record, chat_id=chat, key=key, occurred_at=occurred_at)


def _error(item: Any, source: Source, provider_type: str) -> MessageEvent:
    """An error of the change itself (not of a message or status): Meta's words, no input value."""
    record = item if isinstance(item, dict) else {"value": item}
    errors = status_errors([record])
    reason = f"{errors[0].code}: {errors[0].title or errors[0].message}" if errors else None
    return source.provider_event(provider_type, record, reason=reason)


def _history(items: Items, chunk: Json, path: str, source: Source) -> None:
    """One chunk of a history sync: its threads' messages, or (errors, an empty chunk) itself."""
    threads = chunk.get("threads")
    if not threads:
        items.events.append(source.provider_event("history", chunk, reason="history chunk without threads"))
        return
    items.within(f"{path}.threads", threads, _thread, source)


def _thread(items: Items, thread: Json, path: str, source: Source) -> None:
    contact = thread["id"]
    items.each(f"{path}.messages", thread.get("messages"), _history_message, source, contact)


def _history_message(m: Json, source: Source, contact: str) -> MessageEvent:
    """A past message of the thread with ``contact``: the contact's when it is ``from`` them."""
    sender = phone_digits(m.get("from"))
    outbound = sender != phone_digits(contact)
    occurred_at = when(m.get("timestamp"), source.delivery.received_at)
    return source.unsupported(
        Chat.from_jid(contact), Author(outbound, sender), occurred_at,
        provider_type=f"history:{m.get('type') or 'unknown'}", provider_message_id=m["id"], raw=m,
        reason="history sync",
    )  # fmt: skip


def _names(contacts: Any) -> dict[Any, Any]:
    """wa_id -> profile name; a contact that is not an object names nobody (and fails no message)."""
    if not isinstance(contacts, list):
        return {}
    return {
        c.get("wa_id"): profile.get("name")
        for c in contacts
        if isinstance(c, dict) and isinstance(profile := c.get("profile") or {}, dict)
    }


def _message(m: Json, source: Source, names: dict[Any, Any], outbound: bool) -> MessageEvent:
    pmid, kind, sender = m["id"], m.get("type") or "unknown", phone_digits(m.get("from"))
    counterpart = m.get("to") if outbound else m.get("from")
    if m.get("group_id"):
        chat = Chat(m["group_id"], is_group=True)
    else:
        chat = Chat.from_jid(counterpart or "", contact_name=as_str(names.get(counterpart)))
    author = Author(outbound, sender, None if outbound else as_str(names.get(m.get("from"))))
    occurred_at = when(m.get("timestamp"), source.delivery.received_at)
    if kind == "reaction":
        reaction = m.get("reaction") or {}
        target = reaction.get("message_id")
        if target:
            return source.reaction(
                chat, author, occurred_at, target=target, emoji=reaction.get("emoji"), raw=m, provider_message_id=pmid
            )
    content = _content(kind, m)
    if content is None:
        return _unsupported(source, chat, author, occurred_at, kind, m)
    context = m.get("context") or {}
    return source.message(
        chat, author, pmid, occurred_at, content, raw=m, reply_to=as_str(context.get("id")),
        forwarded=bool(context.get("forwarded") or context.get("frequently_forwarded")),
    )  # fmt: skip


def _content(kind: str, m: Json) -> Content | None:
    part: Any = m.get(kind)
    if kind == "text" and isinstance(part, dict):
        return Content("text", text=as_str(part.get("body")))
    if kind in _MEDIA and isinstance(part, dict):
        voice = kind == "audio" and part.get("voice") is True
        return Content("voice" if voice else kind, caption=as_str(part.get("caption")), media=_media(part, voice))
    if kind == "location" and isinstance(part, dict):
        location = Location(
            latitude=part["latitude"],
            longitude=part["longitude"],
            name=as_str(part.get("name")),
            address=as_str(part.get("address")),
        )
        return Content("location", location=location)
    if kind == "contacts" and isinstance(part, list):
        return Content("contact", contacts=tuple(_contact(c) for c in part))
    if kind == "button" and isinstance(part, dict):
        return Content("interactive", text=as_str(part.get("text")))
    if kind == "interactive" and isinstance(part, dict):
        reply = part.get("button_reply") or part.get("list_reply") or {}
        return Content("interactive", text=as_str(reply.get("title"))) if reply else None
    return None


def _media(part: Json, voice: bool) -> MediaRef:
    return MediaRef(
        provider_media_id=as_str(part.get("id")),
        url=as_str(part.get("url")),
        mime_type=as_str(part.get("mime_type")),
        size_bytes=as_int(part.get("file_size")),
        sha256=sha256_hex(part.get("sha256")),
        filename=as_str(part.get("filename")),
        voice=voice,
        animated=part.get("animated") if isinstance(part.get("animated"), bool) else None,
    )


def _contact(card: Json) -> ContactCard:
    name = card.get("name") or {}
    full = name.get("formatted_name") or " ".join(p for p in (name.get("first_name"), name.get("last_name")) if p)
    phones: list[str] = []
    for phone in card.get("phones") or []:
        digits = phone_digits(phone.get("wa_id")) or phone_digits(phone.get("phone"))
        if digits and digits not in phones:
            phones.append(digits)
    return ContactCard(name=full or None, phones=tuple(phones))


def _unsupported(source: Source, chat: Chat, author: Author, occurred_at: datetime, kind: str, m: Json) -> MessageEvent:
    """Meta's own ``unsupported`` type says what it was in ``unsupported.type`` (edit, revoke,
    poll_creation...): that is the provider type, ``unsupported:edit``."""
    errors = status_errors(m.get("errors"))
    reason = (errors[0].message or errors[0].title) if errors else None
    inner = m.get("unsupported")
    if kind == "unsupported" and isinstance(inner, dict) and as_str(inner.get("type")):
        kind = f"unsupported:{inner['type']}"
    return source.unsupported(
        chat, author, occurred_at, provider_type=kind, provider_message_id=m["id"], reason=reason, raw=m
    )


def _status(s: Json, source: Source) -> MessageEvent:
    target, value, recipient = s["id"], str(s.get("status", "")).lower(), s.get("recipient_id") or ""
    is_group = s.get("recipient_type") == "group"
    chat = Chat(recipient, is_group=True) if is_group else Chat.from_jid(recipient)
    occurred_at = when(s.get("timestamp"), source.delivery.received_at)
    if value == "deleted":
        return source.deleted(chat, Author(outbound=True), occurred_at, target=target, raw=s)
    if value not in _STATUSES:
        return source.unsupported(
            chat, Author(outbound=True), occurred_at, provider_type=f"status:{value}", key=target, raw=s
        )
    return source.status(
        chat, occurred_at, target=target, status=_STATUSES[value], raw=s, errors=status_errors(s.get("errors"))
    )
