"""Evolution API (v2, Baileys) webhooks -> wa.messages events.

One POST is one event: ``messages.upsert`` / ``send.message`` (a message, inbound or with
``key.fromMe`` the business's own), ``messages.update`` (a receipt, no timestamp of its
own: the envelope's ``date_time`` stands in), ``messages.delete``. Baileys wraps content
(``ephemeralMessage``, ``viewOnceMessage*``, ``documentWithCaptionMessage``,
``editedMessage``) and signals deletions and edits as ``protocolMessage``. The channel is
the ``instance`` name. ``messages.set`` (history synced on connecting) gives one
``MessageUnsupported`` per past message, under its own id. Every other event (contacts,
chats, groups, group participants, presence, connection, QR code, calls, labels...) gives
one ``ProviderEventUnsupported`` per item of ``data``, with the chat it names; the QR
code's pairing secrets are left out of it.
The kinds table is in ``streams/normalize/README.md``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
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
    chat_id_of,
    load_body,
    parse_vcard,
    when,
)

PROVIDER = "evolution"
MESSAGE_EVENTS = ("messages.upsert", "send.message", "messages.edited")

_WRAPPERS = (
    "ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension",
    "documentWithCaptionMessage", "editedMessage",
)  # fmt: skip
_NOT_CONTENT = {"messageContextInfo", "senderKeyDistributionMessage", "base64", "mediaUrl"}
_MEDIA = {
    "imageMessage": "image", "videoMessage": "video", "audioMessage": "audio",
    "documentMessage": "document", "stickerMessage": "sticker",
}  # fmt: skip
# Baileys' WebMessageInfo.Status, by name (v2) and by number (v1).
_STATUSES: dict[Any, str] = {
    "ERROR": "failed", "PENDING": "pending", "SERVER_ACK": "sent", "DELIVERY_ACK": "delivered",
    "READ": "read", "PLAYED": "played",
    0: "failed", 1: "pending", 2: "sent", 3: "delivered", 4: "read", 5: "played",
}  # fmt: skip
_REVOKE, _EDIT = ("REVOKE", 0), ("MESSAGE_EDIT", 14)


def normalise(delivery: RawDelivery, *, business_numbers: Collection[str] = frozenset()) -> Normalised:
    """``data`` is one item (path ``data``) or a list of them (``data[0]``...), each on its own."""
    body = load_body(delivery)
    if not isinstance(body, dict) or not isinstance(body.get("event"), str) or "data" not in body:
        raise UnparseableDelivery("not an Evolution webhook: no event and data")
    channel = as_str(body.get("instance")) or delivery.channel
    if not channel:
        raise UnparseableDelivery("Evolution webhook without instance")
    source = Source(PROVIDER, channel, delivery)
    event = body["event"].lower().replace("_", ".")
    fallback = when(body.get("date_time"), delivery.received_at, "date_time")
    business = normalise_jid(body["sender"]).chat_id if body.get("sender") else None
    if event in MESSAGE_EVENTS:
        build, context = _message, (source, business, business_numbers, fallback)
    elif event == "messages.update":
        build, context = _update, (source, fallback)
    elif event == "messages.delete":
        build, context = _delete, (source, fallback)
    elif event == "messages.set":
        build, context = _past, (source, business, business_numbers, fallback)
    else:
        build, context = _other, (source, event, fallback)
    items, data = Items(), body["data"]
    if isinstance(data, dict) and event == "messages.set" and isinstance(data.get("messages"), list):
        items.each("data.messages", data["messages"], build, *context)
    elif isinstance(data, list):
        items.each("data", data, build, *context)
    elif data not in (None, {}):
        items.one("data", data, build, *context)
    if not items.events and not items.failures:  # no item: one trace of the 200 all the same
        items.events.append(source.provider_event(event, {"event": body["event"], "data": data}, occurred_at=fallback,
                                                  reason="a delivery with no items"))  # fmt: skip
    return items.result()


# Pairing secrets of ``qrcode.updated``: whoever holds them can link a device to the number.
_QR_SECRETS = frozenset({"code", "base64", "pairingCode"})


def _other(item: Any, source: Source, event: str, fallback: datetime) -> MessageEvent:
    """An event we do not model; never fails on its content, which is what we keep it for."""
    record = item if isinstance(item, dict) else {"value": item}
    if event == "qrcode.updated":
        record = _without_qr_secrets(record)
    key = record.get("id") if isinstance(record.get("id"), str) else ""
    chat = chat_id_of(item) if isinstance(item, str) else _mentioned_chat(record)
    return source.provider_event(event, record, chat_id=chat, key=key, occurred_at=fallback)


def _past(
    data: Any, source: Source, business: str | None, ours: Collection[str], fallback: datetime
) -> MessageEvent:
    """messages.set, the history Baileys syncs on connecting: a past message is kept as an
    unsupported message under its own id (a later version that models history upgrades the
    row in place); anything else in it as an unmodelled event."""
    key = data.get("key") if isinstance(data, dict) else None
    if not isinstance(key, dict) or not key.get("id") or not key.get("remoteJid"):
        return _other(data, source, "messages.set", fallback)
    jid = _chat_jid(key)
    outbound = bool(key["fromMe"]) if "fromMe" in key else phone_digits(key.get("participant") or jid) in ours
    sender = business if outbound else normalise_jid(key.get("participant") or jid).chat_id
    author = Author(outbound, sender, as_str(data.get("pushName")))
    occurred_at = when(_timestamp(data.get("messageTimestamp")), fallback, "messageTimestamp")
    kind, _ = _unwrap(data.get("message") or {}, data.get("messageType"))
    return source.unsupported(
        Chat.from_jid(jid), author, occurred_at, provider_type=f"messages.set:{kind}", provider_message_id=key["id"],
        raw=data, reason="history sync",
    )


def _without_qr_secrets(record: Json) -> Json:
    """The record minus the secrets, naming the fields it lost (``msgmem_removed``)."""
    inner = record.get("qrcode") if isinstance(record.get("qrcode"), dict) else {}
    removed = sorted({*(_QR_SECRETS & record.keys()), *(f"qrcode.{k}" for k in _QR_SECRETS & inner.keys())})
    if not removed:
        return record
    kept = {k: v for k, v in record.items() if k not in _QR_SECRETS}
    if inner:
        kept["qrcode"] = {k: v for k, v in inner.items() if k not in _QR_SECRETS}
    return {**kept, "msgmem_removed": removed}


def _mentioned_chat(record: Json) -> str | None:
    key = record.get("key") if isinstance(record.get("key"), dict) else {}
    for value in (record.get("remoteJid"), key.get("remoteJid"), record.get("chatId"), record.get("from"),
                  record.get("id")):  # fmt: skip
        if found := chat_id_of(value):
            return found
    return None


def _chat_jid(key: Json) -> str:
    """The chat's address; an @lid chat uses its phone form when Evolution gives one, so a
    contact keeps one chat whether or not a delivery carries the lid."""
    remote = key["remoteJid"]
    alt = key.get("remoteJidAlt") or key.get("senderPn")
    return alt if alt and normalise_jid(remote).is_lid else remote


def _message(
    data: Json, source: Source, business: str | None, ours: Collection[str], fallback: datetime
) -> MessageEvent:
    key, message = data["key"], data.get("message") or {}
    pmid, jid = key["id"], _chat_jid(key)
    group = normalise_jid(jid).is_group
    participant = key.get("participantAlt") or key.get("participant")
    outbound = bool(key["fromMe"]) if "fromMe" in key else phone_digits(participant or jid) in ours
    if outbound:
        sender = business
    else:
        sender = normalise_jid(participant).chat_id if group and participant else normalise_jid(jid).chat_id
    name = as_str(data.get("pushName"))
    chat = Chat.from_jid(jid, contact_name=None if outbound else name)
    author = Author(outbound, sender, name)
    occurred_at = when(_timestamp(data.get("messageTimestamp")), fallback, "messageTimestamp")
    raw = {**data, "message": {k: v for k, v in message.items() if k != "base64"}} if "base64" in message else data
    kind, part = _unwrap(message, data.get("messageType"))
    if kind == "reactionMessage":
        target, emoji = part["key"]["id"], part.get("text")
        return source.reaction(chat, author, occurred_at, target=target, emoji=emoji, raw=raw, provider_message_id=pmid)
    if kind == "protocolMessage" and (part.get("type") in _REVOKE or part.get("type") in _EDIT):
        target = part["key"]["id"]
        if part["type"] in _REVOKE:
            return source.deleted(chat, author, occurred_at, target=target, raw=raw, provider_message_id=pmid)
        new_text = _text_of(part.get("editedMessage") or {})
        return source.edited(
            chat, author, occurred_at, target=target, new_text=new_text, raw=raw, provider_message_id=pmid
        )
    content = _content(kind, part, message)
    if content is None:
        provider_type = f"protocolMessage:{part.get('type')}" if kind == "protocolMessage" else kind
        return source.unsupported(
            chat, author, occurred_at, provider_type=provider_type, provider_message_id=pmid, raw=raw
        )
    context = (part.get("contextInfo") if isinstance(part, dict) else None) or data.get("contextInfo") or {}
    return source.message(
        chat, author, pmid, occurred_at, content, raw=raw,
        reply_to=as_str(context.get("stanzaId")), forwarded=bool(context.get("isForwarded")),
    )  # fmt: skip


def _timestamp(value: Any) -> Any:
    if isinstance(value, dict):  # a protobuf Long: {"low": ..., "high": ..., "unsigned": ...}
        return (value.get("high", 0) << 32) + (value.get("low", 0) & 0xFFFFFFFF)
    return value


def _unwrap(message: Json, hint: str | None) -> tuple[str, Any]:
    """The content key and part of a Baileys message, wrappers removed."""
    while True:
        keys = [k for k in message if k not in _NOT_CONTENT]
        kind = hint if hint in keys else (keys[0] if keys else "unknown")
        part = message.get(kind)
        if kind in _WRAPPERS and isinstance(part, dict) and isinstance(part.get("message"), dict):
            message, hint = part["message"], None
            continue
        return kind, part


def _text_of(message: Json) -> str | None:
    kind, part = _unwrap(message, None)
    if kind == "conversation":
        return as_str(part)
    if isinstance(part, dict):
        return as_str(part.get("text") or part.get("caption"))
    return None


def _content(kind: str, part: Any, message: Json) -> Content | None:
    if kind == "conversation" and isinstance(part, str):
        return Content("text", text=part)
    if not isinstance(part, dict):
        return None
    if kind == "extendedTextMessage":
        url = as_str(part.get("matchedText") or part.get("canonicalUrl"))
        if url and (part.get("title") or part.get("description")):
            link = LinkPreview(url=url, title=as_str(part.get("title")), description=as_str(part.get("description")))
            return Content("link_preview", text=as_str(part.get("text")), link=link)
        return Content("text", text=as_str(part.get("text")))
    if kind in _MEDIA:
        voice = kind == "audioMessage" and part.get("ptt") is True
        media = _media(part, voice, url=as_str(message.get("mediaUrl")), inline="base64" in message)
        return Content("voice" if voice else _MEDIA[kind], caption=as_str(part.get("caption")), media=media)
    if kind in ("locationMessage", "liveLocationMessage"):
        location = Location(
            latitude=part["degreesLatitude"],
            longitude=part["degreesLongitude"],
            name=as_str(part.get("name")),
            address=as_str(part.get("address")),
        )
        return Content("location", location=location)
    if kind == "contactMessage":
        return Content("contact", contacts=(parse_vcard(part.get("vcard"), as_str(part.get("displayName"))),))
    if kind == "contactsArrayMessage":
        cards = tuple(parse_vcard(c.get("vcard"), as_str(c.get("displayName"))) for c in part.get("contacts") or [])
        return Content("contact", contacts=cards)
    return None


def _media(part: Json, voice: bool, *, url: str | None, inline: bool) -> MediaRef:
    """``url`` is Evolution's plaintext copy (S3 on) when present; ``part.url`` is WhatsApp-encrypted."""
    return MediaRef(
        url=url or as_str(part.get("url")),
        mime_type=as_str(part.get("mimetype")),
        size_bytes=as_int(part.get("fileLength")),
        sha256=sha256_hex(part.get("fileSha256")),
        filename=as_str(part.get("fileName") or part.get("title")),
        voice=voice,
        duration_seconds=as_float(part.get("seconds")),
        width=as_int(part.get("width")),
        height=as_int(part.get("height")),
        page_count=as_int(part.get("pageCount")),
        animated=part.get("isAnimated") if isinstance(part.get("isAnimated"), bool) else None,
        inline_base64=inline,
    )


def _update(data: Json, source: Source, fallback: datetime) -> MessageEvent:
    """A receipt: v2 sends ``{keyId, remoteJid, fromMe, status}``, v1 ``{key: {...}, update: {status}}``."""
    key = data.get("key") or {"id": data.get("keyId"), "remoteJid": data.get("remoteJid"), "fromMe": data.get("fromMe")}
    status = (data.get("update") or {}).get("status", data.get("status"))
    target, outbound = key["id"], bool(key.get("fromMe"))
    if not target:
        raise MalformedField.missing("key.id" if data.get("key") else "keyId")
    chat = Chat.from_jid(_chat_jid(key))
    if status == "DELETED":
        return source.deleted(chat, Author(outbound), fallback, target=target, raw=data)
    if status not in _STATUSES:
        return source.unsupported(
            chat, Author(outbound), fallback, provider_type=f"status:{status}", key=target, raw=data
        )
    return source.status(chat, fallback, target=target, status=_STATUSES[status], raw=data, outbound=outbound)  # type: ignore[arg-type]


def _delete(data: Json, source: Source, fallback: datetime) -> MessageEvent:
    key = data.get("key") or data
    chat = Chat.from_jid(_chat_jid(key))
    return source.deleted(chat, Author(bool(key.get("fromMe"))), fallback, target=key["id"], raw=data)
