"""The media projector against the real broker and Postgres, beside the messages projector:
wa.media and the enrichment results land in chat_media, and their text in chat_messages,
whatever the order of arrival, once per media object, newest result winning, without
resurrecting what the retention sweep expired or what a redacted deletion removed.

Each test uses chats on a channel of its own, and both projectors start at the end of their
topics (stored offsets moved there first), so they read only what the test produces.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from contracts import deadletter, enrichment, media
from contracts.deadletter import DeadLettered
from contracts.settings import Settings
from runtime.kafka import end_offsets, make_producer
from streams.media.sweep import sweep_expired
from projections.consumer import Running, running_projector
from projections.media.logic import TOPICS, MediaProjectionEvent
from projections.media.main import PROJECTOR
from projections.media.store import PROJECTION, MediaWriter
from projections.messages.store import MessagesWriter
from runtime.media_storage import LocalMediaStore
from tests.integration.test_projector import FAST, caught_up, channel, produce, projector, start_at_end
from tests.unit.projections.factory import Chat
from tests.unit.projections.factory import items as message_items
from tests.unit.projections.test_media_rows import Media, encode
from tests.unit.projections.test_media_rows import items as media_items
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration


async def start_media_at_end(db: asyncpg.Connection, settings: Settings) -> None:
    for topic in TOPICS:
        for tp, offset in (await end_offsets(settings, topic)).items():
            await db.execute("insert into projection_offsets (projection, topic, partition, next_offset) "
                             "values ($1, $2, $3, $4)", PROJECTION, topic, tp.partition, offset)  # fmt: skip


@asynccontextmanager
async def media_projection(settings: Settings, metrics_port: int | None = None, **overrides: Any
                           ) -> AsyncIterator[Running]:  # fmt: skip
    configured = settings.model_copy(update={"projector_batch_timeout_ms": 50, **overrides})
    group = f"test-media-{uuid.uuid4().hex[:8]}"
    async with running_projector(configured, PROJECTOR, group=group, policy=FAST, metrics_port=metrics_port) as running:
        await asyncio.wait_for(running.projector.ready.wait(), 60)
        yield running


async def publish(settings: Settings, events: Iterable[MediaProjectionEvent | tuple[str, bytes, bytes]]) -> None:
    """Send media and result events (or raw ``(topic, key, value)``) to their topics, in order."""
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for e in events:
            if isinstance(e, tuple):
                topic, key, value = e
            else:
                topic = media.TOPIC if isinstance(e, media.MediaStored | media.MediaFailed | media.MediaSkipped) else {
                    "transcribe": enrichment.TRANSCRIPTS_TOPIC, "caption": enrichment.CAPTIONS_TOPIC,
                    "extract": enrichment.DOCUMENTS_TOPIC}[e.stage]  # fmt: skip
                key, value = e.chat_key.encode(), encode(e)
            futures.append(await producer.send(topic, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def media_caught_up(db: asyncpg.Connection, settings: Settings, timeout: float = 60) -> None:
    ends = {topic: await end_offsets(settings, topic) for topic in TOPICS}

    async def done() -> bool:
        rows = await db.fetch("select topic, partition, next_offset from projection_offsets where projection = $1",
                              PROJECTION)  # fmt: skip
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return all(stored.get((tp.topic, tp.partition), 0) >= o for end in ends.values() for tp, o in end.items() if o)

    await eventually(done, timeout)


async def both_caught_up(db: asyncpg.Connection, settings: Settings) -> None:
    await caught_up(db, settings)
    await media_caught_up(db, settings)


async def media_row(db: asyncpg.Connection, m: Media) -> asyncpg.Record:
    return await db.fetchrow("select * from chat_media where id = $1", m.media_id)


async def message_row(db: asyncpg.Connection, m: Media) -> asyncpg.Record:
    return await db.fetchrow("select * from chat_messages where id = $1", m.message_id)


def media_message(m: Media, t: float, caption: str | None = None, **kw: Any) -> Any:
    return m.chat.received(m.pmid, None, t=t, message_type=m.kind, caption=caption, **kw)


async def ready(db: asyncpg.Connection, settings: Settings) -> None:
    await start_at_end(db, settings)
    await start_media_at_end(db, settings)


# --- the happy path ---------------------------------------------------------------------------


async def test_media_and_results_land_in_chat_media_and_their_text_in_chat_messages(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await ready(db, settings)
    chat = Chat(channel=channel())
    voice, photo, pdf = Media(chat, "v1"), Media(chat, "i1", kind="image", mime="image/jpeg"), Media(
        chat, "d1", kind="document", mime="application/pdf")  # fmt: skip
    signed = Media(chat, "i2", kind="image", mime="image/jpeg")
    async with projector(settings), media_projection(settings):
        await produce(settings, [media_message(voice, 1), media_message(photo, 2), media_message(pdf, 3, "Invoice"),
                                 media_message(signed, 4, "Here is the signed receipt")])  # fmt: skip
        await caught_up(db, settings)
        await publish(settings, [voice.stored(10), photo.stored(11), pdf.stored(12, page_count=None), signed.stored(13),
                                 voice.transcribed("Hi, this is Dana.", 20), photo.captioned("A receipt.", 21),
                                 pdf.extracted("INVOICE 2026-0193", 22, pages=2),
                                 signed.captioned("A signed receipt.", 23)])  # fmt: skip
        await media_caught_up(db, settings)

    v = await media_row(db, voice)
    assert (v["status"], v["message_id"], v["sha256"], v["bucket"]) == ("stored", voice.message_id, voice.sha256,
                                                                         "chat-media")  # fmt: skip
    assert (v["error"], v["transcript"], v["transcript_model"]) == (None, "Hi, this is Dana.", "whisper-1")
    assert v["enrichment_status"] == "done"
    assert (await media_row(db, pdf))["page_count"] == 2
    assert await db.fetchval("select count(*) from chat_media where chat_key = $1", chat.key) == 4
    assert (await message_row(db, voice))["transcript"] == "Hi, this is Dana."
    assert (await message_row(db, pdf))["extracted_text"] == "INVOICE 2026-0193"
    assert (await message_row(db, pdf))["caption"] == "Invoice"
    p, s = await message_row(db, photo), await message_row(db, signed)
    assert (p["caption"], p["caption_generated"]) == ("A receipt.", True)  # the sender wrote none
    assert (s["caption"], s["caption_generated"]) == ("Here is the signed receipt", False)  # the sender's stays
    assert (await media_row(db, signed))["caption"] == "A signed receipt."


async def test_undecodable_records_are_dead_lettered_and_the_rest_applied(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await ready(db, settings)
    voice = Media(Chat(channel=channel()), "v1")
    dead_start = await end_offsets(settings, deadletter.TOPIC)
    key = voice.chat.key.encode()
    async with media_projection(settings, metrics_port=0) as running:
        await publish(settings, [(enrichment.TRANSCRIPTS_TOPIC, key, b"not json"), voice.transcribed("hello", 5),
                                 (media.TOPIC, key, b'{"type": "media_stored"}')])  # fmt: skip
        await media_caught_up(db, settings)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{running.metrics_port}/metrics")).text
    assert (await media_row(db, voice))["transcript"] == "hello"
    assert 'msgmem_projector_dead_lettered_total{projection="chat_media",reason="undecodable"} 2.0' in metrics
    letters = [DeadLettered.decode(r.value) for r in await read_since(settings, deadletter.TOPIC, dead_start)]
    mine = sorted((x.topic, x.value) for x in letters if x.stage == PROJECTOR.process.name and x.key == key)
    assert mine == [(media.TOPIC, b'{"type": "media_stored"}'), (enrichment.TRANSCRIPTS_TOPIC, b"not json")]


# --- order of arrival ---------------------------------------------------------------------------


async def test_results_before_their_media_and_their_message_still_reach_both(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await ready(db, settings)
    chat = Chat(channel=channel())
    voice, photo = Media(chat, "v1"), Media(chat, "i1", kind="image", mime="image/jpeg")
    async with media_projection(settings):  # no messages projector yet: the message rows come later
        await publish(settings, [voice.transcribed("early words", 20), photo.captioned("A parcel.", 21)])
        await media_caught_up(db, settings)
        early = await media_row(db, voice)
        assert (early["status"], early["sha256"], early["stored_at"]) == ("pending", voice.sha256, None)
        assert early["transcript"] == "early words"
        async with projector(settings):
            await produce(settings, [media_message(voice, 1), media_message(photo, 2)])
            await caught_up(db, settings)
            assert (await message_row(db, voice))["transcript"] == "early words"
            assert (await message_row(db, photo))["caption"] == "A parcel."
            await publish(settings, [voice.stored(10), photo.stored(11)])
            await media_caught_up(db, settings)
            # A sender caption that comes later (a copy of the message with it) replaces the AI text.
            await produce(settings, [media_message(photo, 2, "my parcel, damaged")])
            await caught_up(db, settings)
            await publish(settings, [photo.captioned("A damaged parcel.", 40, model="gpt-4o")])  # never over it
            await media_caught_up(db, settings)
    v, p = await media_row(db, voice), await media_row(db, photo)
    assert (v["status"], v["transcript"], v["path"]) == ("stored", "early words", voice.stored(10).path)
    assert (p["status"], p["caption"]) == ("stored", "A damaged parcel.")
    m = await message_row(db, photo)
    assert (m["caption"], m["caption_generated"]) == ("my parcel, damaged", False)


async def test_both_projectors_racing_never_lose_a_text(settings: Settings, db: asyncpg.Connection) -> None:
    await ready(db, settings)
    chats = [Chat(channel=channel(), chat_id=f"1555{n:07d}") for n in range(12)]
    voices = [Media(c, f"v{i}") for i in range(25) for c in chats]
    async with projector(settings, projector_batch_size=40), media_projection(settings, projector_batch_size=40):
        await asyncio.gather(
            produce(settings, [media_message(v, i) for i, v in enumerate(voices)]),
            publish(settings, [v.transcribed(f"words {i}", 100 + i) for i, v in enumerate(voices)]),
        )
        await both_caught_up(db, settings)
    found = dict(await db.fetch("select id, transcript from chat_messages where chat_key = any($1::text[])",
                                [c.key for c in chats]))  # fmt: skip
    assert found == {v.message_id: f"words {i}" for i, v in enumerate(voices)}


@pytest.mark.parametrize("first", ["media", "messages"])
async def test_the_text_locks_order_the_two_writers(settings: Settings, db: asyncpg.Connection, first: str) -> None:
    """Whichever projector's transaction is open first, the other waits for it and copies its text."""
    await ready(db, settings)
    voice = Media(Chat(channel=channel()), "v1")
    writers = {
        "media": (MediaWriter(redact_deleted=False), media_items([voice.transcribed("words", 20)])),
        "messages": (MessagesWriter(redact_deleted=False), message_items([media_message(voice, 1)])),
    }
    second = "messages" if first == "media" else "media"
    conns = {name: await asyncpg.connect(settings.database_url) for name in writers}
    try:
        transactions = {name: conn.transaction() for name, conn in conns.items()}
        await transactions[first].start()
        await writers[first][0].write(conns[first], writers[first][1])  # type: ignore[attr-defined]

        async def write_second() -> None:
            await transactions[second].start()
            await writers[second][0].write(conns[second], writers[second][1])  # type: ignore[attr-defined]
            await transactions[second].commit()

        writing = asyncio.create_task(write_second())
        await asyncio.sleep(0.5)
        waited = not writing.done()
        await transactions[first].commit()
        await writing
    finally:
        for conn in conns.values():
            await conn.close()
    assert (await message_row(db, voice))["transcript"] == "words"
    assert waited, f"the {second} writer did not wait for the {first} writer's transaction"


# --- models, retention, redaction ---------------------------------------------------------------


async def test_a_rerun_with_another_model_updates_the_text_in_place(settings: Settings, db: asyncpg.Connection) -> None:
    await ready(db, settings)
    voice = Media(Chat(channel=channel()), "v1")
    first = voice.transcribed("hello dana", 20, model="whisper-1")
    async with projector(settings), media_projection(settings):
        await produce(settings, [media_message(voice, 1)])
        await publish(settings, [voice.stored(10), first])
        await both_caught_up(db, settings)
        await publish(settings, [voice.transcribed("Hello, Dana.", 50, model="gpt-4o-transcribe")])
        await media_caught_up(db, settings)
        await publish(settings, [first, voice.stored(10)])  # a replay of the older result changes nothing
        await media_caught_up(db, settings)
    [row] = await db.fetch("select * from chat_media where message_id = $1", voice.message_id)
    assert (row["transcript"], row["transcript_model"]) == ("Hello, Dana.", "gpt-4o-transcribe")
    assert row["transcript_at"] == voice.transcribed("", 50).produced_at
    assert (await message_row(db, voice))["transcript"] == "Hello, Dana."


async def test_a_row_the_sweep_expired_is_not_stored_again_by_a_replay(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await ready(db, settings)
    voice = Media(Chat(channel=channel()), "v1")
    stored = voice.stored(10, days=1)
    async with media_projection(settings):
        await publish(settings, [stored])
        await media_caught_up(db, settings)
        later = stored.stored_at + timedelta(days=2)
        report = await sweep_expired(db, LocalMediaStore(tmp_path, "chat-media"), now=later)
        assert report.rows_expired == 1
        await publish(settings, [stored, voice.failed(30)])  # a replay, then a failed re-download
        await media_caught_up(db, settings)
        expired = await media_row(db, voice)
        await publish(settings, [voice.stored(40)])  # stored again, later: legitimately back in retention
        await media_caught_up(db, settings)
    assert (expired["status"], expired["stored_at"], expired["error"]) == ("expired", stored.stored_at, None)
    again = await media_row(db, voice)
    assert (again["status"], again["stored_at"]) == ("stored", voice.stored(40).stored_at)


async def test_skips_and_failures_across_batches_keep_the_latest_and_what_was_declared(
    settings: Settings, db: asyncpg.Connection
) -> None:
    """The SQL merge's twin of the unit tests on MediaRow.absorb: one event per batch."""
    await ready(db, settings)
    voice = Media(Chat(channel=channel()), "v1")
    declared = {"size_bytes": 23485, "sha256": voice.sha256}
    seen = []
    async with media_projection(settings):
        for event in (voice.media_skipped(10, **declared), voice.failed(20, **declared),
                      voice.media_skipped(15, "EVOLUTION_API_URL is not set"), voice.media_skipped(30),
                      voice.stored(25, size_bytes=23000), voice.failed(40)):  # fmt: skip
            await publish(settings, [event])
            await media_caught_up(db, settings)
            row = await media_row(db, voice)
            seen.append((row["status"], row["error"], row["size_bytes"], row["sha256"]))
    skipped = ("skipped", "not_configured: META_ACCESS_TOKEN is not set", 23485, voice.sha256)
    assert seen == [
        skipped, ("failed", "not_found: 404 from provider", 23485, voice.sha256),
        ("failed", "not_found: 404 from provider", 23485, voice.sha256), skipped,
        ("stored", None, 23000, voice.sha256), ("stored", None, 23000, voice.sha256),
    ]  # fmt: skip


async def test_a_redacted_deletion_is_not_filled_back_in(settings: Settings, db: asyncpg.Connection) -> None:
    await ready(db, settings)
    chat = Chat(channel=channel())
    gone_first, gone_later = Media(chat, "v1"), Media(chat, "i1", kind="image", mime="image/jpeg")
    kept = Media(chat, "v2")
    async with projector(settings, deleted_messages="redact"), media_projection(settings, deleted_messages="redact"):
        await produce(settings, [chat.deleted("v1", 5)])  # the deletion before its message
        await publish(settings, [gone_first.transcribed("secret words", 20)])  # the result before its message
        await both_caught_up(db, settings)
        await produce(settings, [media_message(gone_first, 1), media_message(gone_later, 2), media_message(kept, 3)])
        await caught_up(db, settings)
        await produce(settings, [chat.deleted("i1", 6)])
        await caught_up(db, settings)
        await publish(settings, [gone_later.captioned("A card with its number.", 21), kept.transcribed("kept", 22)])
        await media_caught_up(db, settings)
    for m in (gone_first, gone_later):
        row = await message_row(db, m)
        assert (row["transcript"], row["caption"], row["extracted_text"]) == (None, None, None)
        assert row["deleted_at"] is not None
    assert (await message_row(db, kept))["transcript"] == "kept"
