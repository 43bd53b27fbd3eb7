"""The media projection's pure logic: decoded wa.media / wa.transcripts / wa.captions /
wa.documents events -> at most one ``chat_media`` row per media object. No I/O.

What each event means for the row (merged by ``MediaRow.absorb``):

- ``MediaStored``: the stored object and its description, status 'stored';
- ``MediaFailed``: status 'failed' with ``error`` = reason: error (never over a stored row),
  and the size and sha256 the webhook declared;
- ``MediaSkipped``: status 'skipped' with ``error`` = reason: detail ("not_configured:
  META_ACCESS_TOKEN is not set"), the declared size and sha256; like a failure, it never
  replaces a stored object, and the latest of failures and skips wins (``failed_at`` holds
  when it was recorded);
- ``MediaExpired``: status 'expired' (the retention sweep deleted the object), unless a newer
  copy was stored since;
- ``AudioTranscribed`` / ``ImageCaptioned`` / ``DocumentExtracted``: the transcript, the AI
  description of the image, or the document's text (and page count), with model and
  produced_at; enrichment 'done';
- ``EnrichmentSkipped`` / ``EnrichmentFailed``: no text, only the enrichment outcome.

A result carries enough to create the row by itself (ids, chat, kind, mime type, sha256;
status 'pending'), so it may be applied before the MediaStored it derives from.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from contracts import enrichment, media
from contracts.enrichment import (
    AudioTranscribed, DocumentExtracted, EnrichmentFailed, EnrichmentSkipped, ImageCaptioned,
)  # fmt: skip
from contracts.envelope import EventCodec
from contracts.errors import with_type
from contracts.media import MediaExpired, MediaFailed, MediaSkipped, MediaStored
from projections.items import Item
from projections.media.rows import DONE, EXPIRED, FAILED, SKIPPED, STORED, MediaRow

TOPICS: tuple[str, ...] = (
    media.TOPIC, enrichment.TRANSCRIPTS_TOPIC, enrichment.CAPTIONS_TOPIC, enrichment.DOCUMENTS_TOPIC,
)  # fmt: skip

# One union over the four topics: every type name is distinct, and EnrichmentSkipped /
# EnrichmentFailed say which stage wrote them. (A result logged on the wrong one of the three
# enrichment topics is therefore accepted; no stage does that.) One decoder keeps the
# projection's decode a plain ``bytes -> event`` like every other projection's.
MediaProjectionEvent = Annotated[
    MediaStored | MediaFailed | MediaSkipped | MediaExpired | AudioTranscribed | ImageCaptioned | DocumentExtracted
    | EnrichmentSkipped | EnrichmentFailed,
    Field(discriminator="type"),
]
MODELS = (*media.EVENT_MODELS, AudioTranscribed, ImageCaptioned, DocumentExtracted, EnrichmentSkipped, EnrichmentFailed)
# The type names are distinct, so are the upcasters' keys.
CODEC: EventCodec[MediaProjectionEvent] = EventCodec(
    MediaProjectionEvent, MODELS, ChainMap(media.UPCASTERS, enrichment.UPCASTERS)
)


def decode_event(data: bytes) -> MediaProjectionEvent:
    """Bytes from any of the four topics -> the current model; raises ``EventDecodeError`` on poison."""
    return CODEC.decode(data)


@dataclass
class MediaOps:
    rows: dict[str, MediaRow] = field(default_factory=dict)  # by media id

    @property
    def message_ids(self) -> list[str]:
        return sorted({r.message_id for r in self.rows.values()})

    @property
    def messages_with_text(self) -> list[str]:
        """Messages whose chat_messages text may change: those with a text result in the batch."""
        return sorted({r.message_id for r in self.rows.values() if r.has_text})


def fold(items: Sequence[Item[MediaProjectionEvent]]) -> MediaOps:
    ops = MediaOps()
    for item in items:
        row = to_row(item.event)
        current = ops.rows.get(row.id)
        if current is None:
            ops.rows[row.id] = row
        else:
            current.absorb(row)
    return ops


def to_row(event: MediaProjectionEvent) -> MediaRow:
    if isinstance(event, MediaStored):
        return MediaRow(
            id=event.media_id, message_id=event.message_id, chat_key=event.chat_key, kind=event.kind, status=STORED,
            provider_media_id=event.provider_media_id, mime_type=event.mime_type, filename=event.filename,
            duration_seconds=event.duration_seconds, page_count=event.page_count, size_bytes=event.size_bytes,
            sha256=event.sha256, bucket=event.bucket, path=event.path, stored_at=event.stored_at,
            expires_at=event.expires_at,
        )  # fmt: skip
    if isinstance(event, MediaFailed):
        return MediaRow(
            id=event.media_id, message_id=event.message_id, chat_key=event.chat_key, kind=event.kind, status=FAILED,
            provider_media_id=event.provider_media_id, mime_type=event.mime_type, filename=event.filename,
            duration_seconds=event.duration_seconds, page_count=event.page_count, size_bytes=event.size_bytes,
            sha256=event.sha256, error=f"{event.reason}: {event.error}", failed_at=event.failed_at,
        )  # fmt: skip
    if isinstance(event, MediaExpired):
        return MediaRow(
            id=event.media_id, message_id=event.message_id, chat_key=event.chat_key, kind=event.kind, status=EXPIRED,
            size_bytes=event.size_bytes, sha256=event.sha256, bucket=event.bucket, path=event.path,
            stored_at=event.stored_at, expires_at=event.expires_at,
        )  # fmt: skip
    if isinstance(event, MediaSkipped):
        return MediaRow(
            id=event.media_id, message_id=event.message_id, chat_key=event.chat_key, kind=event.kind, status=SKIPPED,
            provider_media_id=event.provider_media_id, mime_type=event.mime_type, filename=event.filename,
            duration_seconds=event.duration_seconds, page_count=event.page_count, size_bytes=event.size_bytes,
            sha256=event.sha256, error=f"{event.reason}: {event.detail}", failed_at=event.skipped_at,
        )  # fmt: skip
    row = MediaRow(id=event.media_id, message_id=event.message_id, chat_key=event.chat_key, kind=event.kind,
                   mime_type=event.mime_type, sha256=event.sha256, enrichment_at=event.produced_at)  # fmt: skip
    if isinstance(event, AudioTranscribed):
        row.transcript, row.transcript_model, row.transcript_at = event.text, event.model, event.produced_at
    elif isinstance(event, ImageCaptioned):
        row.caption, row.caption_model, row.caption_at = event.caption, event.model, event.produced_at
    elif isinstance(event, DocumentExtracted):
        row.extracted_text, row.extracted_model, row.extracted_at = event.text, event.model, event.produced_at
        row.page_count = event.page_count
    if isinstance(event, EnrichmentSkipped):
        row.enrichment_status = "skipped"
        row.enrichment_error = f"{event.reason}: {event.detail}" if event.detail else event.reason
    elif isinstance(event, EnrichmentFailed):
        row.enrichment_status, row.enrichment_error = "failed", with_type(event.error_type, event.error)
    elif isinstance(event, AudioTranscribed | ImageCaptioned | DocumentExtracted):
        row.enrichment_status = DONE
    else:  # a new event type in contracts that this projection does not know yet
        raise TypeError(f"media projection cannot apply {type(event).__name__}")
    return row
