"""One item and the mapping rule that took it -> one event, through the same builders
(``common.Source``) as the built-in providers, so ids follow the one scheme: provider name,
channel and provider message id."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from contracts.ids import phone_digits, sha256_hex
from contracts.messages import MEDIA_TYPES, ContactCard, LinkPreview, Location, MediaRef, MessageEvent
from contracts.provider_mapping import (
    DeleteRule,
    EditRule,
    LinkMapping,
    LocationMapping,
    MediaMapping,
    MessageRule,
    ReactionRule,
    StatusRule,
)
from streams.normalize.errors import MalformedField
from streams.normalize.providers.common import (
    UNNAMED_CHAT,
    Author,
    Chat,
    Content,
    Json,
    Source,
    as_float,
    as_int,
    parse_vcard,
    status_errors,
)
from streams.normalize.providers.mapped_values import (
    Missing,
    address,
    as_text,
    moment,
    plain_phone,
    required,
    search,
    text,
)

Who = MessageRule | ReactionRule | EditRule | DeleteRule


def who(rule: Who, item: Any, business_numbers: Collection[str], *, chat_required: bool) -> tuple[Chat, Author]:
    """The chat and the author. Direction: ``outbound`` when it finds a value, else whether
    the sender is one of the business's numbers. Names as Whapi's and Evolution's: the
    chat's name is a group's, or the contact's when the business wrote; else the sender is
    the contact."""
    sender = address(text(rule.sender, item, "sender"), "sender")
    said = search(rule.outbound, item, "outbound")
    outbound = bool(said) if said is not None else phone_digits(sender) in business_numbers
    sender_name, chat_name = text(rule.sender_name, item, "sender_name"), text(rule.chat_name, item, "chat_name")
    where = text(rule.chat, item, "chat")
    if where is None:
        if chat_required:
            raise Missing("chat")
        return UNNAMED_CHAT, Author(outbound, sender, sender_name)
    try:
        contact_name = chat_name if outbound else sender_name
        chat = Chat.from_jid(plain_phone(where), group_name=chat_name, contact_name=contact_name)
    except ValueError:
        raise MalformedField("chat", "not a WhatsApp address") from None
    return chat, Author(outbound, sender, sender_name)


def message(rule: MessageRule, item: Any, raw: Json, source: Source, numbers: Collection[str]) -> MessageEvent:
    pmid = required(rule.id, item, "id")
    chat, author = who(rule, item, numbers, chat_required=True)
    occurred_at = moment(rule.timestamp, item, source.delivery.received_at)
    provider_type = text(rule.type, item, "type") or "unknown"
    ours = rule.types.get(provider_type.lower())
    content = None if ours is None else _content(ours, rule, item)
    if content is None:
        return source.unsupported(chat, author, occurred_at, provider_type=provider_type, provider_message_id=pmid,
                                  raw=raw)  # fmt: skip
    return source.message(
        chat, author, pmid, occurred_at, content, raw=raw,
        reply_to=text(rule.reply_to, item, "reply_to"), forwarded=bool(search(rule.forwarded, item, "forwarded")),
    )  # fmt: skip


def _content(ours: str, rule: MessageRule, item: Any) -> Content | None:
    """The message's content, or None when the part its type needs is not there."""
    media = location = link = None
    contacts: tuple[ContactCard, ...] = ()
    if ours in MEDIA_TYPES and rule.media is not None:
        if (media := _media(rule.media, item, voice=ours == "voice")) is None:
            return None
    if ours == "location" and rule.location is not None:
        if (location := _location(rule.location, item)) is None:
            return None
    if ours == "link_preview" and rule.link is not None:
        link = _link(rule.link, item)
    if ours == "contact":
        contacts = _contacts(search(rule.contacts, item, "contacts"))
    return Content(
        ours, text=text(rule.text, item, "text"), caption=text(rule.caption, item, "caption"),  # type: ignore[arg-type]
        media=media, location=location, contacts=contacts, link=link,
    )  # fmt: skip


def _part(at: Any, item: Any, field: str) -> Json | None:
    """The object ``at`` selects (no ``at``: the item), or None when it is not one."""
    part = item if at is None else search(at, item, f"{field}.at")
    return part if isinstance(part, dict) else None


def _media(m: MediaMapping, item: Any, *, voice: bool) -> MediaRef | None:
    part = _part(m.at, item, "media")
    if part is None:
        return None
    animated = search(m.animated, part, "media.animated")
    return MediaRef(
        provider_media_id=text(m.id, part, "media.id"),
        url=text(m.url, part, "media.url"),
        mime_type=text(m.mime_type, part, "media.mime_type"),
        size_bytes=as_int(search(m.size_bytes, part, "media.size_bytes")),
        sha256=sha256_hex(text(m.sha256, part, "media.sha256")),
        filename=text(m.filename, part, "media.filename"),
        voice=voice,
        duration_seconds=as_float(search(m.duration_seconds, part, "media.duration_seconds")),
        width=as_int(search(m.width, part, "media.width")),
        height=as_int(search(m.height, part, "media.height")),
        page_count=as_int(search(m.page_count, part, "media.page_count")),
        animated=animated if isinstance(animated, bool) else None,
    )


def _location(m: LocationMapping, item: Any) -> Location | None:
    part = _part(m.at, item, "location")
    if part is None:
        return None
    latitude, longitude = search(m.latitude, part, "location.latitude"), search(m.longitude, part, "location.longitude")
    for name, value in (("location.latitude", latitude), ("location.longitude", longitude)):
        if value is None:
            raise MalformedField.missing(name)
    return Location(
        latitude=latitude, longitude=longitude,
        name=text(m.name, part, "location.name"), address=text(m.address, part, "location.address"),
    )  # fmt: skip


def _link(m: LinkMapping, item: Any) -> LinkPreview | None:
    part = _part(m.at, item, "link")
    if part is None:
        return None
    return LinkPreview(
        url=text(m.url, part, "link.url"), title=text(m.title, part, "link.title"),
        description=text(m.description, part, "link.description"),
    )  # fmt: skip


def _contacts(found: Any) -> tuple[ContactCard, ...]:
    """Each a vCard string, or an object with ``vcard`` and ``name``."""
    cards = []
    for index, card in enumerate(found if isinstance(found, list) else [] if found is None else [found]):
        field = f"contacts[{index}]"
        if isinstance(card, dict):
            cards.append(parse_vcard(as_text(card.get("vcard"), field), as_text(card.get("name"), field)))
        else:
            cards.append(parse_vcard(as_text(card, field)))
    return tuple(cards)


def reaction(rule: ReactionRule, item: Any, raw: Json, source: Source, numbers: Collection[str]) -> MessageEvent:
    target = required(rule.target, item, "target")
    chat, author = who(rule, item, numbers, chat_required=True)
    return source.reaction(
        chat, author, moment(rule.timestamp, item, source.delivery.received_at), target=target,
        emoji=text(rule.emoji, item, "emoji"), raw=raw, provider_message_id=text(rule.id, item, "id"),
    )  # fmt: skip


def edit(rule: EditRule, item: Any, raw: Json, source: Source, numbers: Collection[str]) -> MessageEvent:
    target = required(rule.target, item, "target")
    chat, author = who(rule, item, numbers, chat_required=False)
    return source.edited(
        chat, author, moment(rule.timestamp, item, source.delivery.received_at), target=target,
        new_text=text(rule.new_text, item, "new_text"), raw=raw, provider_message_id=text(rule.id, item, "id"),
    )  # fmt: skip


def delete(rule: DeleteRule, item: Any, raw: Json, source: Source, numbers: Collection[str]) -> MessageEvent:
    target = required(rule.target, item, "target")
    chat, author = who(rule, item, numbers, chat_required=False)
    return source.deleted(
        chat, author, moment(rule.timestamp, item, source.delivery.received_at), target=target, raw=raw,
        provider_message_id=text(rule.id, item, "id"),
    )  # fmt: skip


def status(rule: StatusRule, item: Any, raw: Json, source: Source, _numbers: Collection[str]) -> MessageEvent:
    """A receipt of an outbound message; ``deleted`` is its deletion; an unknown value is kept."""
    target = required(rule.target, item, "target")
    where = required(rule.chat, item, "chat")
    try:
        chat = Chat.from_jid(plain_phone(where))
    except ValueError:
        raise MalformedField("chat", "not a WhatsApp address") from None
    occurred_at = moment(rule.timestamp, item, source.delivery.received_at)
    value = (text(rule.status, item, "status") or "").lower()
    ours = rule.statuses.get(value)
    if ours == "deleted":
        return source.deleted(chat, Author(outbound=True), occurred_at, target=target, raw=raw)
    if ours is None:
        return source.unsupported(
            chat, Author(outbound=True), occurred_at, provider_type=f"status:{value}", key=target, raw=raw
        )
    errors = status_errors(search(rule.errors, item, "errors"))
    return source.status(chat, occurred_at, target=target, status=ours, raw=raw, errors=errors)


BUILDERS = {"message": message, "reaction": reaction, "edit": edit, "delete": delete, "status": status}
