"""`msgmem replay` re-runs a stage over a range of its input beside the live workers and
writes outputs with the same ids as the first run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import TopicPartition
from pydantic import SecretStr

from contracts import media, messages, raw
from contracts.raw import RawDelivery
from contracts.settings import Settings
from runtime.kafka import end_offsets, make_consumer, make_producer, read_range
from msgmem.replay import parse_position, replay
from runtime.media_storage import LocalMediaStore
from tests.conftest import FIXTURES
from tests.fakes.events import media_message as fixture_media_message
from tests.fakes.events import put_fixture, sha256_file, stored_event
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.server import ThreadedServer
from tests.fakes.stages import running_stage
from tests.integration.test_enrich_stages import publish
from tests.integration.test_media_projection import media_caught_up, media_projection, ready
from tests.integration.test_projector import caught_up, channel, produce, projector
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_replay_of_normalize_reproduces_the_same_event_ids(settings: Settings) -> None:
    before = await end_offsets(settings, raw.TOPIC)
    deliveries = [
        RawDelivery(delivery_id=str(uuid.uuid4()), provider="meta", received_at=datetime.now(UTC),
                    body=(FIXTURES / "webhooks" / "meta_cloud" / name).read_bytes())
        for name in ("text.json", "batch.json", "reaction.json")
    ]
    producer = make_producer(settings)
    await producer.start()
    try:
        for d in deliveries:
            await producer.send_and_wait(raw.TOPIC, d.body, key=d.key, headers=d.kafka_headers())
    finally:
        await producer.stop()
    after = await end_offsets(settings, raw.TOPIC)
    [tp] = [tp for tp in after if after[tp] > before[tp]]  # one key: one partition

    # Only this test's partition: at the same offsets other partitions hold other tests' records.
    span = {"start": before[tp], "until": after[tp], "partition": tp.partition, "progress": False}
    dry = await replay(settings, "normalize", dry_run=True, **span)
    assert (dry.inputs, dry.outputs, dry.failures) == (3, 6, 0)

    start = await end_offsets(settings, messages.TOPIC)
    first = await replay(settings, "normalize", **span)
    middle = await end_offsets(settings, messages.TOPIC)
    second = await replay(settings, "normalize", **span)
    assert first.outputs == second.outputs == dry.outputs

    def ids(records):  # type: ignore[no-untyped-def]
        return sorted(messages.decode_event(r.value).event_id for r in records
                      if messages.decode_event(r.value).delivery_id in {d.delivery_id for d in deliveries})

    run1 = ids(await read_range(settings, messages.TOPIC, start, middle))
    run2 = ids(await read_range(settings, messages.TOPIC, middle, await end_offsets(settings, messages.TOPIC)))
    assert run1 == run2 and len(run1) == 6

    chat = messages.decode_event((await read_range(settings, messages.TOPIC, start, middle))[0].value).chat_key
    only = await replay(settings, "normalize", chat=chat, dry_run=True, **span)
    assert 0 < only.outputs <= dry.outputs

    future = await replay(settings, "normalize", start=parse_position((datetime.now(UTC) + timedelta(hours=1)).isoformat()),
                          until=None, dry_run=True, progress=False)
    assert future.inputs == 0

    with pytest.raises(KeyError, match="no partition 999"):
        await replay(settings, "normalize", start=0, until=1, partition=999, dry_run=True, progress=False)


def test_positions_are_offsets_or_aware_times() -> None:
    assert parse_position("42") == 42
    assert parse_position("2026-11-20T09:00:00Z") == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert parse_position(None) is None
    with pytest.raises(ValueError, match="timezone"):
        parse_position("2026-11-20T09:00:00")


async def test_replaying_transcribe_with_another_model_updates_the_transcript_in_place(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A better transcription model ships: one `msgmem replay transcribe` beside the live worker
    rewrites the voice note's transcript where it is read, and adds no row anywhere."""
    await db.execute("truncate enrichment_cache")
    await ready(db, settings)
    store = LocalMediaStore(tmp_path / "media", "chat-media")
    await put_fixture(store, "voice_note.ogg")
    chat = f"whapi:{channel()}:15550001234"
    stored = stored_event("voice_note.ogg", "voice", store=store, message=f"replay-{uuid.uuid4().hex[:8]}", chat=chat)
    message = fixture_media_message("whapi", "voice", message_id=stored.message_id, chat_key=chat)
    fake = FakeOpenAI()
    sha = sha256_file("voice_note.ogg")
    fake.transcripts[sha] = "Hi, this is Dana about the delivery."

    with ThreadedServer(fake.app) as url:
        ai = {"openai_api_key": SecretStr(fake.api_key), "openai_base_url": f"{url}/v1", "media_local_dir": store.root}
        env = {"OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": f"{url}/v1", "MEDIA_LOCAL_DIR": str(store.root)}
        async with projector(settings), media_projection(settings):
            await produce(settings, [message])
            before = await end_offsets(settings, media.TOPIC)
            await commit_offsets(settings, settings.consumer_group("transcribe"), before)  # the worker starts after `message`
            await publish(settings, [stored])
            after = await end_offsets(settings, media.TOPIC)
            with running_stage("streams.transcribe", settings, tmp_path, **env):  # the live worker, left running
                first = await eventually(lambda: transcript_of(db, stored.media_id), timeout=90)
                assert (first["transcript"], first["transcript_model"]) == ("Hi, this is Dana about the delivery.",
                                                                            "gpt-4o-mini-transcribe")  # fmt: skip

                fake.transcripts[sha] = "Hi, this is Dana Silva about the delivery of order 4271."
                better = settings.model_copy(update={**ai, "transcription_model": "whisper-large-v9"})
                [tp] = [tp for tp in after if after[tp] > before[tp]]
                summary = await replay(better, "transcribe", start=before[tp], until=after[tp], chat=chat,
                                       partition=tp.partition, progress=False)  # fmt: skip
                assert summary.inputs >= 1 and summary.outputs == 1

                second = await eventually(lambda: transcript_of(db, stored.media_id, "whisper-large-v9"), timeout=60)
                await media_caught_up(db, settings)
                await caught_up(db, settings)

    assert second["transcript"] == "Hi, this is Dana Silva about the delivery of order 4271."
    assert await db.fetchval("select count(*) from chat_media where message_id = $1", stored.message_id) == 1
    assert await db.fetchval("select count(*) from chat_messages where chat_key = $1", chat) == 1
    assert await db.fetchval("select transcript from chat_messages where id = $1", stored.message_id) == second["transcript"]
    models = [c.model for c in fake.calls("/v1/audio/transcriptions") if c.sha256 == sha and c.status == 200]
    assert models == ["gpt-4o-mini-transcribe", "whisper-large-v9"]  # one paid call per model, no more


async def transcript_of(db: asyncpg.Connection, media_id: str, model: str | None = None) -> asyncpg.Record | None:
    """The media row once it has a transcript (by ``model``, if given)."""
    row = await db.fetchrow("select transcript, transcript_model from chat_media where id = $1", media_id)
    done = row is not None and row["transcript"] is not None and model in (None, row["transcript_model"])
    return row if done else None


async def commit_offsets(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Move a stopped stage's consumer group to ``offsets``, so its next worker starts there."""
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()
