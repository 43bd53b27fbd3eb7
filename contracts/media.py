"""wa.media: one event per media message once its file is in storage, once storing it failed,
or once it was skipped because its provider is not configured for media.

Keyed by ``chat_key``. Produced by the media stage from the MessageReceived / MessageSent
events of wa.messages that carry ``media``; consumed by the projector (``chat_media``) and
by the enrichment stages (transcribe, caption, extract), which read the stored object.

Objects are content-addressed (``path`` is derived from the SHA-256), so one file sent in
many chats, forwarded or replayed is stored once; ``media_id`` (= ``chat_media.id``) is
derived from the message, so a redelivery or a replay upserts the same row.
"""

from __future__ import annotations

import uuid
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


EVENT_MODELS = (MediaStored, MediaFailed, MediaSkipped)

MediaEvent = Annotated[MediaStored | MediaFailed | MediaSkipped, Field(discriminator="type")]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}

CODEC: EventCodec[MediaEvent] = EventCodec(MediaEvent, EVENT_MODELS, UPCASTERS)


def encode_event(event: MediaEvent) -> bytes:
    return CODEC.encode(event)


def decode_event(data: bytes) -> MediaEvent:
    """Bytes from wa.media -> the current model; raises ``EventDecodeError`` on poison."""
    return CODEC.decode(data)
