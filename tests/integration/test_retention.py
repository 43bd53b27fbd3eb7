"""Retention by policy against the real broker and Postgres.

One chat's history on the log: old messages (past MESSAGE_RETENTION_DAYS), messages of middle
age with transcripts, AI captions and their chunks (past TRANSCRIPT_RETENTION_DAYS only), and
new ones. `msgmem status`'s preview counts what the sweep will do; the sweep appends a
MessagesExpired and a TextsCleared to wa.retention; the erasures projector removes the old
messages with their versions, media rows, file and chunks, and clears the middle ones' derived
text, the sender's own text kept; the new ones and another chat are untouched. A replay of the
old messages and of the enrichment results brings nothing back, and a rebuild of every
projection from offset 0 ends with exactly the live rows.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import embeddings
from contracts.embeddings import ChunksReplaced, EmbeddedChunk, encode_vector
from contracts.erasure import chat_hash
from contracts.settings import Settings
from projections.consumer import running_projector
from projections.embeddings.main import PROJECTOR as EMBEDDINGS_PROJECTOR
from projections.embeddings.vectors import register_vector
from projections.erasures.main import PROJECTOR as ERASURES_PROJECTOR
from projections.rebuild.run import rebuild
from runtime.kafka import make_producer
from streams.common.outputs import KafkaOutputs
from streams.media.retention_sweep import preview, sweep
from tests.integration.test_media_projection import both_caught_up, media_message, media_projection, publish
from tests.integration.test_projector import FAST, channel, produce, projector
from tests.integration.test_rebuild import table_rows
from tests.integration.test_rebuild_embeddings import projector_caught_up
from tests.unit.projections.factory import T0, Chat, at
from tests.unit.projections.test_media_rows import Media
from tests.waiting import eventually

pytestmark = pytest.mark.integration

DAY = 86400.0
NOW = T0 + timedelta(days=90)
TABLES = ("chats", "chat_messages", "chat_message_pending", "chat_message_versions", "chat_media",
          "message_embeddings", "message_embedding_sources", "message_embedding_deletions")  # fmt: skip


def _sha(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, name).hex * 2


def dated(event: Any, message: Any) -> Any:
    """A media or result event carries its message's receipt time, as the stages write them."""
    return event.model_copy(update={"received_at": message.received_at})


def chunks(message: Any, source: str, texts: list[str], t: float) -> ChunksReplaced:
    """The embed stage's event for ``source`` of ``message`` (vectors of EMBEDDINGS_DIMENSIONS)."""
    tag = f"{message.message_id}-{source}-{t}"
    return ChunksReplaced(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, tag)), chat_key=message.chat_key, occurred_at=message.occurred_at,
        received_at=message.received_at, provider=message.provider, channel_id=message.channel_id,
        delivery_id=message.delivery_id, message_id=message.message_id,
        provider_message_id=message.provider_message_id, source=source, version_at=at(t), text_sha256="00" * 32,
        token_count=10 * len(texts), model="fake", dimensions=1536, tokenizer="cl100k_base", chunk_size_tokens=700,
        chunk_overlap_tokens=140, input_event_id=tag, produced_at=at(t),
        chunks=tuple(EmbeddedChunk(index=i, start_token=10 * i, end_token=10 * i + 10, text=text,
                                   embedding=encode_vector([0.01 * (i + 1)] * 1536)) for i, text in enumerate(texts)),
    )  # type: ignore[arg-type]  # fmt: skip


async def publish_chunks(settings: Settings, events: list[ChunksReplaced]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(embeddings.TOPIC, embeddings.encode_event(e), key=e.chat_key.encode(),
                                         headers=[("mm-type", e.type.encode())])  # fmt: skip
    finally:
        await producer.stop()


class History:
    """Old (day 0), middle-aged (day 40) and new (day 80) messages of one chat, and another chat."""

    def __init__(self, chan: str) -> None:
        self.chat, self.other = Chat(channel=chan), Chat(channel=chan, chat_id="15550009999")
        self.gone = Chat(channel=chan, chat_id="15550008888")  # every message of it expires
        c = self.chat
        self.ov = Media(c, "ov", sha256=_sha(chan + "ov"))
        self.mv = Media(c, "mv", sha256=_sha(chan + "mv"))
        self.mi = Media(c, "mi", kind="image", mime="image/jpeg", sha256=_sha(chan + "mi"))
        self.nv = Media(c, "nv", sha256=_sha(chan + "nv"))
        self.o1 = c.received("o1", "an old hello", t=0)
        self.ov_msg = media_message(self.ov, 10)
        self.mv_msg = media_message(self.mv, 40 * DAY)
        self.mi_msg = media_message(self.mi, 40 * DAY + 10, "Signed receipt")
        self.nv_msg = media_message(self.nv, 80 * DAY)
        self.n1 = c.received("n1", "a new hello", t=80 * DAY + 10)
        self.elsewhere = self.other.received("x1", "another chat", t=85 * DAY)
        self.messages = [self.o1, self.ov_msg, c.edited("o1", "an old hello, edited", t=100), self.mv_msg, self.mi_msg,
                         self.nv_msg, self.n1, self.elsewhere, self.gone.received("g1", "bye", t=5),
                         self.gone.consent("g2", "opted_out", t=6)]  # fmt: skip
        self.transcripts = [
            dated(self.ov.transcribed("old words", 20), self.ov_msg),
            dated(self.mv.transcribed("middle words", 40 * DAY + 20), self.mv_msg),
            dated(self.mi.captioned("A signed paper receipt.", 40 * DAY + 20), self.mi_msg),
            dated(self.nv.transcribed("new words", 80 * DAY + 20), self.nv_msg),
        ]
        self.results = [
            dated(self.ov.stored(15), self.ov_msg), dated(self.mv.stored(40 * DAY + 15), self.mv_msg),
            dated(self.mi.stored(40 * DAY + 15, path=f"{self.mi.sha256[:2]}/{self.mi.sha256}.jpg"), self.mi_msg),
            dated(self.nv.stored(80 * DAY + 15), self.nv_msg), *self.transcripts,
        ]  # fmt: skip
        self.chunks = [
            chunks(self.o1, "text", ["an old hello"], 0), chunks(self.ov_msg, "transcript", ["old words"], 20),
            chunks(self.mv_msg, "transcript", ["middle words"], 40 * DAY + 20),
            chunks(self.mi_msg, "text", ["Signed receipt"], 40 * DAY + 10),
            chunks(self.mi_msg, "caption", ["A signed", "paper receipt."], 40 * DAY + 20),
            chunks(self.nv_msg, "transcript", ["new words"], 80 * DAY + 20),
            chunks(self.n1, "text", ["a new hello"], 80 * DAY + 10),
        ]  # fmt: skip

    def files(self, root: Path) -> dict[str, Path]:
        out = {}
        for name, m in (("ov", self.ov), ("mv", self.mv), ("nv", self.nv)):
            out[name] = root / f"{m.sha256[:2]}/{m.sha256}.ogg"
            out[name].parent.mkdir(parents=True, exist_ok=True)
            out[name].write_bytes(name.encode())
        return out


async def all_caught_up(db: asyncpg.Connection, settings: Settings) -> None:
    await both_caught_up(db, settings)
    await projector_caught_up(db, settings)


async def test_the_policies_remove_and_clear_through_events_and_a_rebuild_ends_the_same(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    h = History(channel())
    c = h.chat
    media_dir = tmp_path / "media"
    files = h.files(media_dir)
    live = settings.model_copy(update={
        "media_local_dir": media_dir, "projector_batch_timeout_ms": 50, "message_retention_days": 60,
        "transcript_retention_days": 30, "media_retention_days": 90,
    })  # fmt: skip
    await register_vector(db)
    group = uuid.uuid4().hex[:8]
    async with projector(live), media_projection(live), \
            running_projector(live, EMBEDDINGS_PROJECTOR, group=f"test-emb-{group}", policy=FAST), \
            running_projector(live, ERASURES_PROJECTOR, group=f"test-era-{group}", policy=FAST):  # fmt: skip
        await produce(live, h.messages)
        await publish(live, h.results)
        await publish_chunks(live, h.chunks)
        await all_caught_up(db, live)
        ids = {r["id"] for r in await db.fetch("select id from chat_messages where chat_key = $1", c.key)}
        assert ids == {c.mid(p) for p in ("o1", "ov", "mv", "mi", "nv", "n1")}
        assert await db.fetchval("select transcript from chat_messages where id = $1", c.mid("mv")) == "middle words"
        untouched = await table_rows(db, TABLES)

        # what `msgmem status` shows before the sweep
        policies = {p.policy: p for p in await preview(db, live, NOW)}
        msgs, texts, media = (policies[k] for k in ("MESSAGE_RETENTION_DAYS", "TRANSCRIPT_RETENTION_DAYS",
                                                    "MEDIA_RETENTION_DAYS"))  # fmt: skip
        assert (msgs.days, msgs.due, msgs.files) == (60, 3, 1)  # o1, ov, g1 and ov's file
        assert msgs.oldest_goes_at == h.o1.received_at + timedelta(days=60)
        assert (texts.days, texts.due) == (30, 2)  # mv's transcript, mi's AI caption
        assert texts.oldest_goes_at == h.mv_msg.received_at + timedelta(days=30)
        assert (media.days, media.due) == (90, 0)
        assert "MESSAGE_RETENTION_DAYS=60: next sweep 3 messages removed (1 files)" in msgs.render()

        outputs = await KafkaOutputs.start(live)
        try:
            report = await sweep(db, live, outputs, now=NOW)
        finally:
            await outputs.stop()
        assert (report.chats_expired, report.messages_expired, report.chats_cleared, report.messages_cleared) == (
            2, 3, 1, 2)  # fmt: skip

        cut = await eventually(lambda: db.fetchrow(
            "select * from retention_cutoffs where chat_hash = $1 and messages_before is not null"
            " and texts_before is not null", chat_hash(c.key)), timeout=60)  # fmt: skip
        assert (cut["messages_before"], cut["texts_before"]) == (NOW.replace(microsecond=0) - timedelta(days=60),
                                                                 NOW.replace(microsecond=0) - timedelta(days=30))
        await eventually(lambda: _cutoffs_are(db, 2), timeout=60)  # the gone chat's too
        after = await table_rows(db, TABLES)
        # a chat whose every message expired keeps its row (consent included); its messages go
        gone = await db.fetchrow("select * from chats where chat_key = $1", h.gone.key)
        assert gone["consent_state"] == "opted_out" and gone["last_inbound_at"] is not None
        assert await db.fetchval("select count(*) from chat_messages where chat_key = $1", h.gone.key) == 0
        await check_applied(db, h, files)
        assert [r for r in after["chat_messages"] if r["chat_key"] == h.other.key] == [
            r for r in untouched["chat_messages"] if r["chat_key"] == h.other.key]  # another chat: as it was
        policies = {p.policy: p for p in await preview(db, live, NOW)}
        assert policies["MESSAGE_RETENTION_DAYS"].due == 0 and policies["TRANSCRIPT_RETENTION_DAYS"].due == 0
        assert policies["MESSAGE_RETENTION_DAYS"].oldest_goes_at == h.mv_msg.received_at + timedelta(days=60)
        assert policies["TRANSCRIPT_RETENTION_DAYS"].oldest_goes_at == h.nv_msg.received_at + timedelta(days=30)

        # a replay of the old messages and of every enrichment result (and a re-run with another
        # model) brings nothing back
        rerun = dated(h.mv.transcribed("middle words, better", 90 * DAY, model="better"), h.mv_msg)
        await produce(live, [h.o1, h.ov_msg])
        await publish(live, [*h.results, rerun])
        await publish_chunks(live, [*h.chunks, chunks(h.mv_msg, "transcript", ["middle words, better"], 90 * DAY)])
        await all_caught_up(db, live)
        replayed = await table_rows(db, TABLES)
        mv_media = next(r for r in replayed["chat_media"] if r["id"] == h.mv.media_id)
        assert mv_media["transcript"] is None and mv_media["transcript_model"] == "better"
        assert {k: v for k, v in replayed.items() if k != "chat_media"} == {
            k: v for k, v in after.items() if k != "chat_media"}  # fmt: skip
        await check_applied(db, h, files)

        # a rebuild of every projection from offset 0 leaves the live rows as they are
        report = await rebuild(live, ["messages", "media", "embeddings"], progress=False, workers=2)
        assert all(p.swapped and p.match for p in report.projections), [
            (p.projection, p.match, p.outcome, [(x.table, x.samples) for x in p.comparisons]) for p in report.projections]
        assert [p.projection for p in report.projections] == ["chat_messages", "chat_media", "message_embeddings"]
        assert await table_rows(db, TABLES) == replayed


async def check_applied(db: asyncpg.Connection, h: History, files: dict[str, Path]) -> None:
    c = h.chat
    ids = {r["id"] for r in await db.fetch("select id from chat_messages where chat_key = $1", c.key)}
    assert ids == {c.mid(p) for p in ("mv", "mi", "nv", "n1")}  # the old ones are gone
    old = [c.mid("o1"), c.mid("ov")]
    for table in ("chat_message_versions", "chat_media", "message_embeddings", "message_embedding_sources"):
        assert await db.fetchval(f"select count(*) from {table} where message_id = any($1::text[])", old) == 0, table
    assert not files["ov"].exists() and files["mv"].exists() and files["nv"].exists()

    mv = await db.fetchrow("select transcript, caption, caption_generated from chat_messages where id = $1", c.mid("mv"))
    assert tuple(mv) == (None, None, False)
    mi = await db.fetchrow("select caption, caption_generated from chat_messages where id = $1", c.mid("mi"))
    assert tuple(mi) == ("Signed receipt", False)  # the sender's caption is the message: kept
    media = {r["id"]: r for r in await db.fetch("select * from chat_media where chat_key = $1", c.key)}
    assert media[h.mv.media_id]["transcript"] is None and media[h.mv.media_id]["transcript_at"] is not None
    assert media[h.mi.media_id]["caption"] is None and media[h.mi.media_id]["status"] == "stored"
    assert media[h.nv.media_id]["transcript"] == "new words"
    assert await db.fetchval("select transcript from chat_messages where id = $1", c.mid("nv")) == "new words"

    found = [tuple(r) for r in await db.fetch(
        "select message_id, chunk_index, source, chunk_text, chunk_count from message_embeddings"
        " where chat_key = $1 order by message_id, chunk_index", c.key)]  # fmt: skip
    assert sorted(found) == sorted([(c.mid("mi"), 0, "text", "Signed receipt", 1),
                                    (c.mid("nv"), 0, "transcript", "new words", 1),
                                    (c.mid("n1"), 0, "text", "a new hello", 1)])  # fmt: skip
    sources = {(r["message_id"], r["source"]) for r in await db.fetch(
        "select message_id, source from message_embedding_sources where chat_key = $1", c.key)}  # fmt: skip
    assert sources == {(c.mid("mi"), "text"), (c.mid("nv"), "transcript"), (c.mid("n1"), "text")}


async def _cutoffs_are(db: asyncpg.Connection, n: int) -> bool:
    return await db.fetchval("select count(*) from retention_cutoffs") == n
