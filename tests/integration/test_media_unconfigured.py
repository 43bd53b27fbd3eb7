"""The media stage with no provider credentials at all (no WHAPI token, no META_ACCESS_TOKEN,
no EVOLUTION_API_URL), as a newcomer's stack runs: every media message of every bundled
webhook fixture becomes a 'skipped' chat_media row that names the missing setting and keeps
the size and sha256 the webhook declared, with no request and no dead letter. Evolution
deliveries with their media inline are stored all the same, read back from the real wa.raw;
a malformed inline base64 is a 'failed' row with its reason. The wa.raw reader on its own:
any record back by its coordinates, None past the log.

The media worker is a real Faust process; the media projector runs in this process. Events
are normalised from the fixtures on channels of the test's own, so their ids are new.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import asyncpg
import pytest

from contracts import deadletter, media, messages, raw
from contracts.deadletter import DeadLettered
from contracts.messages import RecordRef
from contracts.settings import Settings
from runtime.kafka import end_offsets, make_producer
from streams.common.records import InputRecord
from streams.media.raw_records import KafkaRawRecords
from tests.fakes.events import inline_raw, normalised_media, sha256_file
from tests.fakes.stages import running_stage
from tests.integration.test_media_projection import media_projection, start_media_at_end
from tests.integration.test_projector import channel, fixture_events
from tests.unit.normalize.webhooks import all_cases
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration

NO_CREDENTIALS = {
    "WHAPI_TOKEN": "", "WHAPI_API_TOKEN": "", "META_ACCESS_TOKEN": "", "EVOLUTION_API_URL": "",
    "EVOLUTION_API_KEY": "", "WHAPI_MEDIA_HOSTS": "", "META_MEDIA_HOSTS": "", "MEDIA_TRUSTED_ORIGINS": "",
}  # fmt: skip
MISSING = {
    "whapi": "not_configured: WHAPI_API_TOKEN (or WHAPI_TOKEN) is not set",
    "meta": "not_configured: META_ACCESS_TOKEN is not set",
    "evolution": "not_configured: EVOLUTION_API_URL is not set",
}


async def publish_raw(settings: Settings, deliveries: list[raw.RawDelivery]) -> list[InputRecord]:
    """Append deliveries to wa.raw as ingest does; the records as a consumer will see them."""
    producer = make_producer(settings)
    await producer.start()
    try:
        records = []
        for d in deliveries:
            headers = d.kafka_headers()
            meta = await producer.send_and_wait(raw.TOPIC, d.body, key=d.key, headers=headers)
            records.append(InputRecord(raw.TOPIC, meta.partition, meta.offset, d.key, d.body, tuple(headers)))
        return records
    finally:
        await producer.stop()


async def publish_messages(settings: Settings, events: list[messages.MessageEvent]) -> list[tuple[int, int]]:
    """Append events to wa.messages as normalize does; their (partition, offset)."""
    producer = make_producer(settings)
    await producer.start()
    try:
        placed = []
        for e in events:
            meta = await producer.send_and_wait(messages.TOPIC, messages.encode_event(e), key=e.chat_key.encode(),
                                                headers=[("mm-type", e.type.encode())])  # fmt: skip
            placed.append((meta.partition, meta.offset))
        return placed
    finally:
        await producer.stop()


async def test_without_credentials_every_fixture_media_is_skipped_and_inline_media_stored(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    chan = {provider: channel() for provider in MISSING}
    events = [e for provider, case in all_cases() for e in fixture_events(provider, case, chan[provider])]
    with_media = {e.message_id: e for e in events if getattr(e, "media", None) is not None}
    assert {e.provider for e in with_media.values()} == set(MISSING) and len(with_media) >= 20

    run = uuid.uuid4().hex[:8]
    inline = await publish_raw(settings, [
        inline_raw("voice", "voice_note.ogg", provider_message_id=f"{run}-VOICE", channel=chan["evolution"]),
        inline_raw("image_with_caption", "receipt_photo.jpg", provider_message_id=f"{run}-IMAGE",
                   channel=chan["evolution"]),
        inline_raw("document_pdf", None, base64_text="JVBERi0x***not base64***", provider_message_id=f"{run}-BAD",
                   channel=chan["evolution"]),
    ])  # fmt: skip
    voice, image, bad = (normalised_media(r) for r in inline)
    assert voice.media is not None and voice.media.inline_record is not None
    assert voice.media.inline_record.offset == inline[0].offset  # the media stage reads it back there

    await start_media_at_end(db, settings)
    start_media, start_dead = await end_offsets(settings, media.TOPIC), await end_offsets(settings, deadletter.TOPIC)
    everything = [*events, voice, image, bad]
    placed = dict(zip((e.event_id for e in everything), await publish_messages(settings, everything)))
    mine = {**with_media, voice.message_id: voice, image.message_id: image, bad.message_id: bad}
    media_dir = tmp_path / "media"

    async with media_projection(settings):
        with running_stage("streams.media", settings, tmp_path, MEDIA_LOCAL_DIR=str(media_dir),
                           MEDIA_RETRY_MIN_SECONDS="0.05", MEDIA_RETRY_MAX_SECONDS="0.2", **NO_CREDENTIALS):  # fmt: skip

            async def all_rows() -> dict[str, asyncpg.Record]:
                found = await db.fetch("select * from chat_media where message_id = any($1::text[])", list(mine))
                return {r["message_id"]: r for r in found} if len(found) == len(mine) else {}

            rows = await eventually(all_rows, timeout=90)
            outcomes = [media.decode_event(r.value) for r in await read_since(settings, media.TOPIC, start_media)]
            letters = [DeadLettered.decode(r.value) for r in await read_since(settings, deadletter.TOPIC, start_dead)]

    for message_id, event in with_media.items():
        row = rows[message_id]
        assert (row["status"], row["error"]) == ("skipped", MISSING[event.provider]), (event.provider, row["kind"])
        assert event.media is not None
        assert (row["size_bytes"], row["sha256"]) == (event.media.size_bytes, event.media.sha256)
        assert (row["path"], row["stored_at"]) == (None, None)
    declared = [rows[m] for m in with_media]
    assert any(r["sha256"] for r in declared) and any(r["size_bytes"] for r in declared)  # Meta's sha256, Whapi's size

    for event, file in ((voice, "voice_note.ogg"), (image, "receipt_photo.jpg")):
        row = rows[event.message_id]
        assert (row["status"], row["sha256"], row["error"]) == ("stored", sha256_file(file), None)
        assert hashlib.sha256((media_dir / row["path"]).read_bytes()).hexdigest() == sha256_file(file)
    failed = rows[bad.message_id]
    assert failed["status"] == "failed" and failed["error"].startswith("malformed: inline base64: ")
    assert "not base64" not in failed["error"]
    assert failed["size_bytes"] == 1636  # declared by the fixture

    types = {e.message_id: e.type for e in outcomes if e.message_id in mine}
    assert sorted(set(types.values())) == ["media_failed", "media_skipped", "media_stored"]
    coordinates = {(messages.TOPIC, *placed[e.event_id]) for e in everything}
    assert not [x for x in letters if x.stage == "media" and (x.topic, x.partition, x.offset) in coordinates]


async def test_raw_records_reads_any_record_back_and_none_past_the_log(settings: Settings) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        placed = {}
        for n, partition in enumerate((0, 5, 0)):
            meta = await producer.send_and_wait(raw.TOPIC, f"body-{n}".encode(), key=b"k", partition=partition)
            placed[n] = RecordRef(topic=raw.TOPIC, partition=meta.partition, offset=meta.offset)
    finally:
        await producer.stop()
    reader = KafkaRawRecords(settings)
    try:
        for n in (2, 0, 1, 2, 0):  # backwards, across partitions, and again
            assert await reader.read(placed[n]) == f"body-{n}".encode()
        past = placed[2].model_copy(update={"offset": placed[2].offset + 1000})
        assert await reader.read(past) is None
    finally:
        await reader.aclose()
