"""Ingest's outbound endpoint (``provider: "outbound"`` deliveries) -> ``MessageSent``.

The body is one ``contracts.outbound.OutboundMessage`` (or a JSON list of them). The event
is attributed to the provider the message was sent through, so its ids match that
provider's later statuses, reactions and echoes of the same message. In a list each send
stands on its own (a bad one fails at ``[i]``); a single send that is not valid is the
whole delivery, which is then unparseable.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import ValidationError

from contracts.ids import sha256_hex
from contracts.messages import MessageEvent
from contracts.outbound import OutboundMessage
from contracts.raw import RawDelivery
from streams.normalize.errors import UnparseableDelivery
from streams.normalize.providers.common import Author, Chat, Content, Items, Normalised, Source, describe, load_body

PROVIDER = "outbound"


def normalise(delivery: RawDelivery, *, business_numbers: Collection[str] = frozenset()) -> Normalised:
    body = load_body(delivery)
    if isinstance(body, list):
        items = Items()
        items.each("", body, _sent, delivery)
        return items.result()
    try:
        return Normalised([_sent(body, delivery)])
    except ValidationError as exc:
        raise UnparseableDelivery(f"not an outbound message: {describe('', exc)}") from None


def _sent(raw: Any, delivery: RawDelivery) -> MessageEvent:
    send = OutboundMessage.model_validate(raw)
    source = Source(send.provider, send.channel_id, delivery)
    if send.is_group and "@" not in send.chat_id:  # a Meta group_id is not a JID
        chat = Chat(send.chat_id, is_group=True, group_name=send.group_name)
    else:
        chat = Chat.from_jid(send.chat_id, group_name=send.group_name, contact_name=send.contact_name)
    media = send.media
    if media is not None and media.sha256:
        media = media.model_copy(update={"sha256": sha256_hex(media.sha256)})
    content = Content(
        send.type,
        text=send.text,
        caption=send.caption,
        media=media,
        location=send.location,
        contacts=send.contacts,
        link=send.link,
    )
    author = Author(outbound=True, sender_id=send.sender_id, sender_name=send.sender_name)
    return source.message(
        chat, author, send.provider_message_id, send.sent_at, content,
        raw=raw, reply_to=send.reply_to_provider_message_id, origin=send.origin, template=send.template,
    )  # fmt: skip
