"""WhatsApp Cloud API (Meta) webhooks -> wa.messages events.

One POST nests ``entry[] x changes[]``; a ``messages`` change holds inbound
``messages[]`` and/or ``statuses[]`` of the business's sends, an ``smb_message_echoes``
change holds ``message_echoes[]`` (sends from the WhatsApp Business app). Sends through
the Cloud API itself are never echoed: they reach us through ingest's outbound endpoint.
The channel is ``metadata.phone_number_id``. Changes of other fields (account, template,
quality updates) concern no chat and yield no events; they stay on wa.raw.
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
    return items.result()


def _entry(items: Items, entry: Json, path: str, delivery: RawDelivery) -> None:
    items.within(f"{path}.changes", entry.get("changes"), _change, delivery)


def _change(items: Items, change: Json, path: str, delivery: RawDelivery) -> None:
    """``messages[]`` are always the contact's, ``message_echoes[]`` always the business's."""
    if change.get("field") not in MESSAGE_FIELDS:
        return
    value = change.get("value") or {}
    metadata = value.get("metadata") or {}
    channel = as_str(metadata.get("phone_number_id")) or delivery.channel
    if not channel:
        raise MalformedField.missing("value.metadata.phone_number_id")
    source = Source(PROVIDER, channel, delivery)
    names = _names(value.get("contacts"))
    items.each(f"{path}.value.messages", value.get("messages"), _message, source, names, False)
    items.each(f"{path}.value.message_echoes", value.get("message_echoes"), _message, source, names, True)
    items.each(f"{path}.value.statuses", value.get("statuses"), _status, source)


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
    errors = status_errors(m.get("errors"))
    reason = (errors[0].message or errors[0].title) if errors else None
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
