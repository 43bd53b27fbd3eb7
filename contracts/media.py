"""wa.media: one event per media message once its file is in storage, once storing it failed,
or once it was skipped because its provider is not configured for media; and one when the
retention sweep expired it.

Keyed by ``chat_key``. Produced by the media stage from the MessageReceived / MessageSent
events of wa.messages that carry ``media``, and by its retention sweep (``MediaExpired``);
consumed by the projector (``chat_media``) and by the enrichment stages (transcribe, caption,
extract), which read the stored object and ignore every other type.

Objects are content-addressed (``path`` is derived from the SHA-256), so one file sent in
many chats, forwarded or replayed is stored once; ``media_id`` (= ``chat_media.id``) is
derived from the message, so a redelivery or a replay upserts the same row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Envelope, EventCodec, Upcaster
from contracts.ids import ID_NAMESPACE

TOPIC = "wa.media"

MediaKind = Literal["image", "video", "audio", "voice", "document", "sticker"]
StorageBackend = Literal["local", "supabase"]
FailureReason = Literal[
    "too_large",  # declared or streamed size above MEDIA_MAX_BYTES
    "sha256_mismatch",  # the bytes are not the file the provider announced
    "host_not_allowed",  # the URL is outside the provider's allow-list or not https on 443: never requested
    "address_not_public",  # the host resolves to a loopback, private, link-local... address: never connected
    "no_source",  # no media id or usable URL, or the provider is not configured
    "not_found",  # the provider no longer has it (Meta ids expire after 7 days)
    "unauthorized",  # the provider refused our credentials
    "rejected",  # any other 4xx from the provider
    "download_failed",  # transient errors outlived the retries (also dead-lettered)
    "malformed",  # inline base64 that is not valid, or a media id that is not one safe path segment
]
# Why a media was not even attempted: the setting it needs (a token, an API URL) is not set.
SkipReason = Literal["not_configured"]


def media_id(message_id: str) -> str:
    """``chat_media.id`` of a message's (single) media object: stable forever, like the ids in contracts.ids."""
    return str(uuid.uuid5(ID_NAMESPACE, "media\x1f" + message_id))


def expired_event_id(media_id: str, stored_at: datetime) -> str:
    """The id of the expiry of one stored copy: a sweep repeated after a crash writes the same id."""
    parts = ("media_expired", media_id, stored_at.astimezone(UTC).isoformat())
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


class _MediaEvent(Envelope):
    """What the message said about its media; the envelope is the message's own (chat, times, delivery)."""

    message_id: str  # chat_messages.id
    media_id: str  # chat_media.id
    provider_message_id: str
    direction: Literal["inbound", "outbound"]
    kind: MediaKind
    provider_media_id: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    voice: bool = False
    duration_seconds: float | None = None
    page_count: int | None = None
    width: int | None = None
    height: int | None = None


class MediaStored(_MediaEvent):
    """The file is in storage at ``bucket``/``path`` with this size and SHA-256 (verified).

    ``reused`` says the same bytes were already stored (a duplicate, forward or replay), so
    nothing new was written. ``expires_at`` is ``stored_at`` + MEDIA_RETENTION_DAYS (None: kept).
    """

    type: Literal["media_stored"] = "media_stored"
    size_bytes: int
    sha256: str  # lower-case hex
    storage: StorageBackend
    bucket: str
    path: str
    stored_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    reused: bool = False


class MediaFailed(_MediaEvent):
    """The file could not be stored. ``final`` False: transient errors outlived the retries and the
    input is also in wa.deadletter, so a `dlq retry` may still store it (a later MediaStored wins).

    ``size_bytes`` and ``sha256`` are what the provider declared in the webhook (None when it
    did not say): unverified claims, kept so the row still describes the file."""

    type: Literal["media_failed"] = "media_failed"
    reason: FailureReason
    error: str
    attempts: int
    final: bool = True
    failed_at: AwareDatetime
    size_bytes: int | None = None
    sha256: str | None = None  # lower-case hex, as declared


class MediaSkipped(_MediaEvent):
    """The file was not requested at all: its provider lacks a setting media downloads need.
    ``detail`` names it ("META_ACCESS_TOKEN is not set"). Nothing is dead-lettered; once the
    setting is there, replaying the media stage over these messages stores them (a later
    MediaStored wins). ``size_bytes`` and ``sha256``: as declared, like MediaFailed's."""

    type: Literal["media_skipped"] = "media_skipped"
    reason: SkipReason
    detail: str
    skipped_at: AwareDatetime
    size_bytes: int | None = None
    sha256: str | None = None  # lower-case hex, as declared


class MediaExpired(Envelope):
    """The retention sweep ended the stored copy of ``stored_at``: its object is deleted from
    storage (``object_deleted``), or kept because another row still in retention uses the same
    content-addressed file. Appended after the deletion, so a sweep that crashed in between
    deletes again (a no-op) and appends the same event (``expired_event_id``).

    Not a fact about a message, so none of ``_MediaEvent``'s message fields: the sweep knows
    only the row. The object columns repeat the row's (the winning MediaStored's), so the
    projection gets the same row whichever of the two it applies first. ``provider`` and
    ``channel_id`` come from ``chat_key``; ``delivery_id`` is ``SWEEP_DELIVERY``; ``occurred_at``
    is the sweep's time, ``received_at`` its message's (like every event about a message, so
    the retention cut-offs of ``contracts.retention`` date it; the sweep's time when the message
    has no row, and in events of earlier sweeps). Introduced at schema_version 1 (the envelope's
    default)."""

    type: Literal["media_expired"] = "media_expired"
    message_id: str  # chat_messages.id
    media_id: str  # chat_media.id
    kind: MediaKind
    size_bytes: int | None = None
    sha256: str | None = None
    bucket: str
    path: str
    stored_at: AwareDatetime  # which stored copy expired: a later MediaStored is not undone
    expires_at: AwareDatetime
    object_deleted: bool


SWEEP_DELIVERY = "retention-sweep"

EVENT_MODELS = (MediaStored, MediaFailed, MediaSkipped, MediaExpired)

MediaEvent = Annotated[MediaStored | MediaFailed | MediaSkipped | MediaExpired, Field(discriminator="type")]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}

CODEC: EventCodec[MediaEvent] = EventCodec(MediaEvent, EVENT_MODELS, UPCASTERS)


def encode_event(event: MediaEvent) -> bytes:
    return CODEC.encode(event)


def decode_event(data: bytes) -> MediaEvent:
    """Bytes from wa.media -> the current model; raises ``EventDecodeError`` on poison."""
    return CODEC.decode(data)
