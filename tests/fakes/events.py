"""Inputs for media and enrichment tests: wa.messages events normalised from the webhook
fixtures, MediaStored events for the media fixtures, and both as consumed records; Evolution
deliveries with their media inline (webhook_base64) as wa.raw records."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from contracts import media, messages
from contracts.media import MediaStored
from contracts.raw import RawDelivery
from streams.common.records import InputRecord
from streams.media.logic import content_path
from runtime.media_storage import MediaStore
from streams.normalize.agent import outputs_for
from streams.normalize.logic import NormaliseConfig, normalise
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
    duration: float | None = None,
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
        duration_seconds=duration,
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


def inline_raw(
    case: str, file: str | None, *, base64_text: str | None = None, provider_message_id: str | None = None,
    channel: str | None = None, **part: object,
) -> RawDelivery:  # fmt: skip
    """An Evolution fixture delivery with ``file`` inline (``data.message.base64``; ``base64_text``
    to put anything else there). ``part`` replaces fields of the message's media part."""
    body = orjson.loads((FIXTURES / "webhooks" / "evolution" / f"{case}.json").read_bytes())
    message = body["data"]["message"]
    if provider_message_id is not None:
        body["data"]["key"]["id"] = provider_message_id
    if channel is not None:
        body["instance"] = channel
    for value in message.values():
        if isinstance(value, dict):
            value.update(part)
    inline = base64_text if base64_text is not None else base64.b64encode((MEDIA / (file or "")).read_bytes()).decode()
    message["base64"] = inline
    return RawDelivery(
        delivery_id=str(uuid.uuid4()), provider="evolution", channel=body["instance"], received_at=AT,
        body=orjson.dumps(body), headers={"content-type": "application/json"},
    )


def normalised_media(record: InputRecord) -> messages.MessageReceived | messages.MessageSent:
    """The media event normalize makes of a wa.raw ``record`` (so it points at that record)."""
    [event] = [messages.decode_event(o.value) for o in outputs_for(record, NormaliseConfig()) if o.topic == messages.TOPIC]
    assert isinstance(event, messages.MessageReceived | messages.MessageSent) and event.media is not None
    return event


def inline_delivery(
    case: str, file: str | None, *, partition: int = 3, offset: int = 41, **options: object
) -> tuple[InputRecord, messages.MessageReceived | messages.MessageSent]:
    """``inline_raw`` as the wa.raw record at (partition, offset), and the media event normalize makes of it."""
    delivery = inline_raw(case, file, **options)  # type: ignore[arg-type]
    record = InputRecord("wa.raw", partition, offset, delivery.key, delivery.body, tuple(delivery.kafka_headers()))
    return record, normalised_media(record)
