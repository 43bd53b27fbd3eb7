"""Whapi.Cloud webhooks -> wa.messages events.

One POST names its kind in ``event`` (``{"type": "messages", "event": "post"}``) and carries
``channel_id`` and one section per kind: ``messages[]`` (inbound and, with ``from_me``, the
business's own sends), ``statuses[]`` (string timestamps), ``messages_updates[]``
(messages.patch: ``before_update``/``after_update``, or ``before``/``after``, of an edited
message), ``messages_removed[]`` (messages.delete: message ids only, so the chat is unnamed).
Reactions, edits and deletions also arrive as messages of ``type: "action"`` pointing at
``action.target``. Every other section (chats, contacts, groups, presences, calls, labels...)
becomes one ``ProviderEventUnsupported`` per item: not a message, kept and counted. The kinds
table is in ``streams/normalize/README.md``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from contracts.ids import normalise_jid, phone_digits, sha256_hex
from contracts.messages import LinkPreview, Location, MediaRef, MessageEvent
from contracts.raw import RawDelivery
from streams.normalize.errors import MalformedField, NormaliseError, UnparseableDelivery
from streams.normalize.providers.common import (
    Author,
    Chat,
    Content,
    Items,
    Json,
    Normalised,
    Source,
    UNNAMED_CHAT,
    as_float,
    as_int,
    as_str,
    chat_id_of,
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


_ENVELOPE = frozenset({"event", "channel_id"})
_MODELLED = frozenset({"messages", "statuses", "messages_updates", "messages_removed"})
# An edit changes what a message says; a patch of anything else (a poll's votes, say) is no edit.
_TEXT_CHANGES = frozenset({"text", "body", "caption", "content"})


def normalise(delivery: RawDelivery, *, business_numbers: Collection[str] = frozenset()) -> Normalised:
    """Each item of each section on its own: a bad one fails at its path (``messages[2]``).
    A delivery with nothing in it still leaves one event, so no 200 vanishes."""
    body = load_body(delivery)
    if not isinstance(body, dict) or not ("event" in body or body.keys() - _ENVELOPE):
        raise UnparseableDelivery("not a Whapi webhook: no event and no section")
    channel = as_str(body.get("channel_id")) or delivery.channel
    if not channel:
        raise UnparseableDelivery("Whapi webhook without channel_id")
    source = Source(PROVIDER, channel, delivery)
    items = Items()
    items.each("messages", body.get("messages"), _message, source, business_numbers)
    items.each("statuses", body.get("statuses"), _status, source)
    items.each("messages_updates", body.get("messages_updates"), _patched, source, business_numbers)
    items.each("messages_removed", body.get("messages_removed"), _removed, source)
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    kind = f"{event.get('type')}.{event.get('event')}" if event.get("type") and event.get("event") else None
    for section, value in body.items():
        if section not in _MODELLED and section not in _ENVELOPE:
            provider_type = kind if kind and section.startswith(str(event["type"])) else section
            _unmodelled(items, section, value, source, provider_type)
    if not items.events and not items.failures:
        items.events.append(source.provider_event(kind or "empty", body, reason="a delivery with no items"))
    return items.result()


def _unmodelled(items: Items, section: str, value: Any, source: Source, provider_type: str) -> None:
    """A section we do not model: one event per item (a list), or one for the whole value."""
    if isinstance(value, list):
        items.each(section, value, _other, source, provider_type)
    elif value not in (None, "", {}):
        items.one(section, value, _other, source, provider_type)


def _other(item: Any, source: Source, provider_type: str) -> MessageEvent:
    """Never fails on the item's content: what it is not is exactly what we keep it for."""
    record = item if isinstance(item, dict) else {"value": item}
    key = record.get("id") if isinstance(record.get("id"), str) else ""
    try:
        occurred_at = when(record.get("timestamp"), source.delivery.received_at)
    except MalformedField:
        occurred_at = source.delivery.received_at
    return source.provider_event(
        provider_type, record, chat_id=_mentioned_chat(item), key=key, occurred_at=occurred_at
    )


def _mentioned_chat(item: Any) -> str | None:
    """The chat an unmodelled item is about, if it names one (a chat, contact or group id)."""
    if isinstance(item, str):
        return chat_id_of(item)
    if not isinstance(item, dict):
        return None
    for key in ("chat_id", "contact_id", "group_id", "from", "id"):
        if found := chat_id_of(item.get(key)):
            return found
    for key in ("after_update", "after", "before_update", "before"):
        if isinstance(item.get(key), dict):
            return _mentioned_chat(item[key])
    return None


def _who(m: Json, business_numbers: Collection[str]) -> tuple[Chat, Author]:
    sender = normalise_jid(m["from"]).chat_id if m.get("from") else None
    outbound = bool(m["from_me"]) if "from_me" in m else phone_digits(sender) in business_numbers
    name = as_str(m.get("from_name"))
    chat = Chat.from_jid(
        m["chat_id"],
        group_name=as_str(m.get("chat_name")),
        contact_name=as_str(m.get("chat_name")) if outbound else name,
    )
    return chat, Author(outbound, sender, name)


def _message(m: Json, source: Source, business_numbers: Collection[str]) -> MessageEvent:
    pmid, kind = m["id"], m.get("type") or "unknown"
    chat, author = _who(m, business_numbers)
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


def _patched(u: Json, source: Source, business_numbers: Collection[str]) -> MessageEvent:
    """messages.patch: the message as it was and as it is. A changed text or caption (or a
    ``changes`` list or trigger saying so) is an edit of the original message id; any other
    patch, or one whose new text cannot be read (an edit to nothing would blank the stored
    message), is kept as an unmodelled event about that message."""
    after, before = _part(u, "after_update", "after"), _part(u, "before_update", "before")
    message = after or before
    target = as_str(u.get("id")) or as_str(message.get("id"))
    if not target:
        raise MalformedField.missing("id")
    trigger = u.get("trigger") if isinstance(u.get("trigger"), dict) else {}
    new_text = _text(after)
    changes = u.get("changes") if isinstance(u.get("changes"), list) else []
    edited = new_text is not None and (
        bool(_TEXT_CHANGES & {str(c) for c in changes})
        or (trigger.get("action") or {}).get("type") == "edit"
        or new_text != _text(before)
    )
    if not edited:
        return source.provider_event("messages.patch", u, chat_id=_mentioned_chat(message), key=target)
    if message.get("chat_id"):
        chat, author = _who(message, business_numbers)
    elif trigger.get("chat_id"):
        chat, author = _who(trigger, business_numbers)
    else:
        chat, author = UNNAMED_CHAT, Author(bool(message.get("from_me")))
    occurred_at = when(trigger.get("timestamp") or after.get("edited_at"), source.delivery.received_at,
                       "trigger.timestamp")  # fmt: skip
    return source.edited(
        chat, author, occurred_at, target=target, new_text=new_text, raw=u, provider_message_id=as_str(trigger.get("id"))
    )


def _part(u: Json, *names: str) -> Json:
    return next((u[n] for n in names if isinstance(u.get(n), dict)), {})


def _text(m: Json) -> str | None:
    """What a message says: its text, or its media's caption."""
    part = m.get(m.get("type") or "")
    if isinstance(part, dict):
        return as_str(part.get("body") or part.get("caption"))
    return None


def _removed(item: Any, source: Source) -> MessageEvent:
    """messages.delete: usually a bare message id, so the chat is unnamed. Whapi reports what
    the channel's own account removed, hence outbound unless the item says ``from_me: false``."""
    if isinstance(item, str) and item:
        return source.deleted(UNNAMED_CHAT, Author(outbound=True), source.delivery.received_at, target=item,
                              raw={"id": item})  # fmt: skip
    if not isinstance(item, dict):
        raise NormaliseError(f"not a message id ({type(item).__name__})")
    chat = Chat.from_jid(item["chat_id"]) if item.get("chat_id") else UNNAMED_CHAT
    occurred_at = when(item.get("timestamp"), source.delivery.received_at)
    return source.deleted(chat, Author(bool(item.get("from_me", True))), occurred_at, target=item["id"], raw=item)


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
