"""Inputs for media and enrichment tests: wa.messages events normalised from the webhook
fixtures, MediaStored events for the media fixtures, and both as consumed records."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts import media, messages
from contracts.media import MediaStored
from contracts.raw import RawDelivery
from streams.common.records import InputRecord
from streams.media.logic import content_path
from streams.media.storage import MediaStore
from streams.normalize.logic import normalise
from tests.fakes.provider_media import FIXTURES, MEDIA, MIME

WEBHOOK_DIRS = {"whapi": "whapi", "meta": "meta_cloud", "evolution": "evolution"}
AT = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


def message_events(provider: str, case: str, *, delivery_id: str | None = None) -> list[messages.MessageEvent]:
    body = (FIXTURES / "webhooks" / WEBHOOK_DIRS[provider] / f"{case}.json").read_bytes()
    delivery = RawDelivery(
        delivery_id=delivery_id or str(uuid.uuid4()), provider=provider, received_at=AT, body=body,
        headers={"content-type": "application/json"},
    )
    return normalise(delivery)


def media_message(provider: str, case: str, **updates: object) -> messages.MessageReceived | messages.MessageSent:
    """The (first) media message of a fixture, optionally with fields replaced (``media=...``, ids)."""
    event = next(e for e in message_events(provider, case) if getattr(e, "media", None) is not None)
    return event.model_copy(update=updates) if updates else event  # type: ignore[return-value]


def with_media(event: messages.MessageReceived | messages.MessageSent, **ref: object):  # type: ignore[no-untyped-def]
    assert event.media is not None
    return event.model_copy(update={"media": event.media.model_copy(update=ref)})


def message_record(event: messages.MessageEvent, offset: int = 0) -> InputRecord:
    return InputRecord(
        messages.TOPIC, 0, offset, event.chat_key.encode(), messages.encode_event(event),
        (("mm-type", event.type.encode()),),
    )


def sha256_file(name: str) -> str:
    return hashlib.sha256((MEDIA / name).read_bytes()).hexdigest()


def stored_event(
    name: str, kind: str, *, store: MediaStore | None = None, message: str | None = None, chat: str = "whapi:TEST:15550001234",
    path: str | None = None, size: int | None = None, sha256: str | None = None, mime: str | None = None,
) -> MediaStored:  # fmt: skip
    """A MediaStored for a fixture file; ``message`` names a distinct message (same file, other message)."""
    file = MEDIA / name
    sha = sha256 or sha256_file(name)
    mime = mime or MIME[file.suffix]
    provider_message_id = message or f"msg-{name}"
    message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, provider_message_id))
    return MediaStored(
        event_id=str(uuid.uuid4()), chat_key=chat, occurred_at=AT, received_at=AT, provider="whapi",
        channel_id="TEST", delivery_id="dlv-test", message_id=message_id, media_id=media.media_id(message_id),
        provider_message_id=provider_message_id, direction="inbound", kind=kind,  # type: ignore[arg-type]
        mime_type=mime, filename=name, voice=kind == "voice", size_bytes=size if size is not None else file.stat().st_size,
        sha256=sha, storage=store.backend if store else "local", bucket=store.bucket if store else "chat-media",
        path=path or content_path(sha, mime), stored_at=AT, expires_at=AT + timedelta(days=90),
    )


async def put_fixture(store: MediaStore, name: str) -> str:
    """Store a fixture file as the media stage would; return its path."""
    file = MEDIA / name
    path = content_path(sha256_file(name), MIME[file.suffix])
    staged = store.staging_dir / f"{uuid.uuid4()}.part"
    staged.write_bytes(file.read_bytes())
    await store.put(path, staged, MIME[file.suffix])
    return path


def media_record(event: media.MediaEvent, offset: int = 0) -> InputRecord:
    return InputRecord(
        media.TOPIC, 0, offset, event.chat_key.encode(), media.encode_event(event), (("mm-type", event.type.encode()),)
    )


def fixture_path(name: str) -> Path:
    return MEDIA / name
