"""wa.messages: one event per message, edit, deletion, reaction, status or consent change,
and one per provider event we do not model (``MessageUnsupported``, ``ProviderEventUnsupported``).

Keyed by ``chat_key`` so a chat's events stay in order. Produced by the normalize stage
from wa.raw; consumed by the projector (chat_messages, chats), the media stage and the
embedder. ``raw`` keeps the provider's own part of the delivery (one message or status,
never the whole batch, never inline media bytes) for audit and for types we do not model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from contracts.envelope import Envelope, EventCodec, Frozen, Upcaster

TOPIC = "wa.messages"

MessageType = Literal[
    "text", "image", "video", "audio", "voice", "document", "sticker",
    "location", "contact", "link_preview", "interactive",
]  # fmt: skip
MEDIA_TYPES: frozenset[str] = frozenset({"image", "video", "audio", "voice", "document", "sticker"})
Origin = Literal["user", "agent", "system"]
Direction = Literal["inbound", "outbound"]
DeliveryStatus = Literal["pending", "sent", "delivered", "read", "played", "failed"]
ConsentState = Literal["opted_in", "opted_out"]
Raw = dict[str, Any]


class RecordRef(Frozen):
    """A record's place in the log, where a stage can read it again."""

    topic: str
    partition: int
    offset: int


class MediaRef(Frozen):
    """Where a message's media can be fetched and what to expect; the bytes never travel here.

    ``url`` is the provider's link (Whapi's ``link``, Evolution's plaintext ``mediaUrl``); for
    Evolution it may also be the WhatsApp-encrypted ``.enc`` URL the sender's client set in
    the message, which is no download link: the media stage never requests it.

    ``inline_base64`` says the provider put the bytes in the delivery itself (Evolution with
    webhook_base64): the media stage takes them from the wa.raw record at ``inline_record``
    (set by normalize from the record it read), not from ``url``. The bytes stay in wa.raw
    alone: copied here they would sit in every wa.messages event (kept forever, read by every
    consumer, stored in chat_messages.raw_event) for one stage to read them once.
    """

    provider_media_id: str | None = None
    url: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None  # lower-case hex of the plaintext
    filename: str | None = None
    voice: bool = False
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    page_count: int | None = None
    animated: bool | None = None
    inline_base64: bool = False
    inline_record: RecordRef | None = None


class Location(Frozen):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


class ContactCard(Frozen):
    """A shared contact; ``phones`` are bare E.164 digits (the WhatsApp id where the provider gives it)."""

    name: str | None = None
    phones: tuple[str, ...] = ()


class LinkPreview(Frozen):
    url: str | None = None
    title: str | None = None
    description: str | None = None


class StatusError(Frozen):
    code: int | str | None = None
    title: str | None = None
    message: str | None = None
    details: str | None = None


class ChatEvent(Envelope):
    """The chat an event belongs to. ``contact_*`` describe the other party of a 1:1 chat.

    ``chat_id`` is ``""`` when the provider did not say which chat (Whapi's ``messages_removed``
    names message ids only): the event is then keyed by its channel, ``provider:channel:``,
    its target is found by ``target_message_id``, and it makes no chat of its own.
    """

    chat_id: str
    is_group: bool = False
    group_name: str | None = None
    contact_phone: str | None = None
    contact_name: str | None = None


class _Message(ChatEvent):
    provider_message_id: str
    message_id: str
    sender_id: str | None = None
    sender_name: str | None = None
    message_type: MessageType
    text: str | None = None
    caption: str | None = None
    media: MediaRef | None = None
    location: Location | None = None
    contacts: tuple[ContactCard, ...] = ()
    link: LinkPreview | None = None
    reply_to_provider_message_id: str | None = None
    forwarded: bool = False
    raw: Raw = Field(default_factory=dict)


class MessageReceived(_Message):
    """A message someone else wrote into the chat (the contact, or a group member)."""

    type: Literal["message_received"] = "message_received"
    direction: Literal["inbound"] = "inbound"
    origin: Origin = "user"


class MessageSent(_Message):
    """A message the business sent: from a provider echo or from ingest's outbound endpoint."""

    type: Literal["message_sent"] = "message_sent"
    direction: Literal["outbound"] = "outbound"
    origin: Origin = "agent"
    template: str | None = None  # the approved template it used, when its sender said so


class _Targeted(ChatEvent):
    provider_message_id: str | None = None  # the edit/deletion/reaction's own id, when it has one
    target_provider_message_id: str
    target_message_id: str
    direction: Direction
    raw: Raw = Field(default_factory=dict)


class MessageEdited(_Targeted):
    type: Literal["message_edited"] = "message_edited"
    sender_id: str | None = None
    sender_name: str | None = None
    new_text: str | None = None


class MessageDeleted(_Targeted):
    type: Literal["message_deleted"] = "message_deleted"
    sender_id: str | None = None
    sender_name: str | None = None


class ReactionAdded(_Targeted):
    type: Literal["reaction_added"] = "reaction_added"
    reactor_id: str | None = None
    reactor_name: str | None = None
    emoji: str


class ReactionRemoved(_Targeted):
    type: Literal["reaction_removed"] = "reaction_removed"
    reactor_id: str | None = None
    reactor_name: str | None = None


class StatusUpdated(_Targeted):
    """A delivery receipt for a message the business sent. They repeat and arrive out of order."""

    type: Literal["status_updated"] = "status_updated"
    direction: Direction = "outbound"
    status: DeliveryStatus
    errors: tuple[StatusError, ...] = ()


class ConsentChanged(ChatEvent):
    """The contact opted out of (or back into) messages by sending a keyword."""

    type: Literal["consent_changed"] = "consent_changed"
    state: ConsentState
    keyword: str
    provider_message_id: str
    message_id: str


class MessageUnsupported(ChatEvent):
    """Something in a recognised delivery that we do not model (a poll, Meta's ``unsupported``):
    kept whole in ``raw`` so nothing is dropped and a later version can re-normalise it."""

    type: Literal["message_unsupported"] = "message_unsupported"
    provider_message_id: str | None = None
    message_id: str | None = None
    sender_id: str | None = None
    sender_name: str | None = None
    origin: Origin = "user"
    direction: Direction = "inbound"
    message_type: Literal["unsupported"] = "unsupported"
    provider_type: str
    reason: str | None = None
    raw: Raw = Field(default_factory=dict)


class ProviderEventUnsupported(Envelope):
    """A webhook event that is not about a message and that we do not model: a presence, a
    chat's, contact's or group's details, group participants, the connection or QR code, an
    account or template notice. Kept whole in ``raw`` and counted by the normalize stage
    (``msgmem_normalize_unsupported_total``), so nothing a provider sent vanishes, and a later
    version can model it by replaying wa.raw; the chat tables leave it out (a presence is not
    a message, an address-book sync is not a conversation).

    ``chat_id`` is the chat the provider tied it to, when it named one; ``chat_key`` is then
    that chat's key (in order with its messages), else the channel's, ``provider:channel:``.
    """

    type: Literal["provider_event_unsupported"] = "provider_event_unsupported"
    provider_type: str  # the provider's name for it: "presences.post", "account_update", "connection.update"
    chat_id: str | None = None
    reason: str | None = None
    raw: Raw = Field(default_factory=dict)


UNSUPPORTED_TYPES: frozenset[str] = frozenset({"message_unsupported", "provider_event_unsupported"})

EVENT_MODELS = (
    MessageReceived, MessageSent, MessageEdited, MessageDeleted, ReactionAdded,
    ReactionRemoved, StatusUpdated, ConsentChanged, MessageUnsupported, ProviderEventUnsupported,
)  # fmt: skip

MessageEvent = Annotated[
    MessageReceived | MessageSent | MessageEdited | MessageDeleted | ReactionAdded
    | ReactionRemoved | StatusUpdated | ConsentChanged | MessageUnsupported | ProviderEventUnsupported,
    Field(discriminator="type"),
]  # fmt: skip

# (type, from_version) -> pure function lifting a payload one version. None yet: every type is at 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}

CODEC: EventCodec[MessageEvent] = EventCodec(MessageEvent, EVENT_MODELS, UPCASTERS)


def encode_event(event: MessageEvent) -> bytes:
    return CODEC.encode(event)


def decode_event(data: bytes) -> MessageEvent:
    """Bytes from wa.messages -> the current model; raises ``EventDecodeError`` on poison."""
    return CODEC.decode(data)
