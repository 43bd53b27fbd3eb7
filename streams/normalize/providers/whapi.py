"""Whapi.Cloud webhooks -> wa.messages events.

One POST carries ``messages[]`` (inbound and, with ``from_me``, the business's own sends)
and/or ``statuses[]`` (string timestamps), plus ``channel_id``. Reactions, edits and
deletions arrive as messages of ``type: "action"`` pointing at ``action.target``.
Other webhook kinds (chats, groups, presences) carry no message and yield no events;
they stay on wa.raw.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from contracts.ids import normalise_jid, phone_digits, sha256_hex
from contracts.messages import LinkPreview, Location, MediaRef, MessageEvent
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
    as_float,
    as_int,
    as_str,
    load_body,
    parse_vcard,
    status_errors,
    when,
)

PROVIDER = "whapi"

_MEDIA_TYPES = {
    "image": "image", "video": "video", "gif": "video", "short": "video", "audio": "audio",
    "voice": "voice", "document": "document", "sticker": "sticker",
}  # fmt: skip
_STATUSES = {
    "pending": "pending", "server": "sent", "sent": "sent", "delivered": "delivered",
    "read": "read", "played": "played", "failed": "failed", "error": "failed",
}  # fmt: skip


def normalise(delivery: RawDelivery, *, business_numbers: Collection[str] = frozenset()) -> Normalised:
    """Each of ``messages[]`` and ``statuses[]`` on its own: a bad one fails at its path."""
    body = load_body(delivery)
    if not isinstance(body, dict) or not ({"messages", "statuses", "event"} & body.keys()):
        raise UnparseableDelivery("not a Whapi webhook: no messages, statuses or event")
    channel = as_str(body.get("channel_id")) or delivery.channel
    if not channel:
        raise UnparseableDelivery("Whapi webhook without channel_id")
    source = Source(PROVIDER, channel, delivery)
    items = Items()
    items.each("messages", body.get("messages"), _message, source, business_numbers)
    items.each("statuses", body.get("statuses"), _status, source)
    return items.result()


def _message(m: Json, source: Source, business_numbers: Collection[str]) -> MessageEvent:
    pmid, kind = m["id"], m.get("type") or "unknown"
    sender = normalise_jid(m["from"]).chat_id if m.get("from") else None
    outbound = bool(m["from_me"]) if "from_me" in m else phone_digits(sender) in business_numbers
    name = as_str(m.get("from_name"))
    chat = Chat.from_jid(
        m["chat_id"],
        group_name=as_str(m.get("chat_name")),
        contact_name=as_str(m.get("chat_name")) if outbound else name,
    )
    author = Author(outbound, sender, name)
    occurred_at = when(m.get("timestamp"), source.delivery.received_at)
    if kind == "action":
        return _action(source, chat, author, m, occurred_at)
    content = _content(kind, m)
    if content is None:
        return source.unsupported(chat, author, occurred_at, provider_type=kind, provider_message_id=pmid, raw=m)
    context = m.get("context") or {}
    return source.message(
        chat, author, pmid, occurred_at, content,
        raw=m, reply_to=as_str(context.get("quoted_id")), forwarded=bool(context.get("forwarded")),
    )  # fmt: skip


def _content(kind: str, m: Json) -> Content | None:
    part: Any = m.get(kind)
    if kind == "text" and isinstance(part, dict):
        return Content("text", text=as_str(part.get("body")))
    if kind in _MEDIA_TYPES and isinstance(part, dict):
        return Content(_MEDIA_TYPES[kind], caption=as_str(part.get("caption")), media=_media(kind, part))
    if kind in ("location", "live_location") and isinstance(part, dict):
        location = Location(
            latitude=part["latitude"],
            longitude=part["longitude"],
            name=as_str(part.get("name")),
            address=as_str(part.get("address")),
        )
        return Content("location", text=as_str(part.get("caption")), location=location)
    if kind == "contact" and isinstance(part, dict):
        return Content("contact", contacts=(parse_vcard(part.get("vcard"), as_str(part.get("name"))),))
    if kind == "contact_list" and isinstance(part, dict):
        cards = tuple(parse_vcard(c.get("vcard"), as_str(c.get("name"))) for c in part.get("list") or [])
        return Content("contact", contacts=cards)
    if kind == "link_preview" and isinstance(part, dict):
        link = LinkPreview(
            url=as_str(part.get("url")), title=as_str(part.get("title")), description=as_str(part.get("description"))
        )
        return Content("link_preview", text=as_str(part.get("body")), link=link)
    return None


def _media(kind: str, part: Json) -> MediaRef:
    return MediaRef(
        provider_media_id=as_str(part.get("id")),
        url=as_str(part.get("link")),
        mime_type=as_str(part.get("mime_type")),
        size_bytes=as_int(part.get("file_size")),
        sha256=sha256_hex(part.get("sha256")),
        filename=as_str(part.get("file_name") or part.get("filename")),
        voice=kind == "voice",
        duration_seconds=as_float(part.get("seconds")),
        width=as_int(part.get("width")),
        height=as_int(part.get("height")),
        page_count=as_int(part.get("page_count")),
        animated=part.get("animated") if isinstance(part.get("animated"), bool) else None,
    )


def _action(source: Source, chat: Chat, author: Author, m: Json, occurred_at: Any) -> MessageEvent:
    action = m.get("action") or {}
    kind, target, pmid = action.get("type"), as_str(action.get("target")), m["id"]
    if target and kind == "reaction":
        return source.reaction(
            chat, author, occurred_at, target=target, emoji=action.get("emoji"), raw=m, provider_message_id=pmid
        )
    if target and kind == "edit":
        return source.edited(
            chat, author, occurred_at, target=target, new_text=_edited_text(action), raw=m, provider_message_id=pmid
        )
    if target and kind in ("delete", "revoke"):
        return source.deleted(chat, author, occurred_at, target=target, raw=m, provider_message_id=pmid)
    return source.unsupported(
        chat, author, occurred_at, provider_type=f"action:{kind}", provider_message_id=pmid, raw=m
    )


def _edited_text(action: Json) -> str | None:
    content = action.get("edited_content")
    if isinstance(content, str):
        return content
    if not isinstance(content, dict):
        return None
    text = content.get("text")
    if isinstance(text, dict):
        text = text.get("body")
    return as_str(content.get("body") or text or content.get("caption"))


def _status(s: Json, source: Source) -> MessageEvent:
    target, value = s["id"], str(s.get("status", "")).lower()
    recipient = s.get("recipient_id") or s.get("chat_id")
    if not recipient:
        raise MalformedField.missing("recipient_id")
    chat = Chat.from_jid(recipient)
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
