"""``msgmem projections rebuild embeddings`` against the real broker and Postgres: the embed worker
(a real Faust process, the fake OpenAI server behind it) and the embeddings projector fill
message_embeddings and its state tables; the rebuild makes them again from wa.embeddings alone,
without a single model call, and swaps them in with their HNSW index while both keep running.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import embeddings
from contracts.settings import Settings
from projections.consumer import running_projector
from projections.embeddings.main import PROJECTOR
from projections.embeddings.store import PROJECTION, TABLES
from projections.embeddings.vectors import register_vector
from projections.rebuild.run import rebuild
from runtime.kafka import end_offsets, make_producer
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.server import ThreadedServer
from tests.fakes.stages import running_stage
from tests.integration.test_embed_stage import LONG, chunks, publish
from tests.integration.test_projector import FAST
from tests.integration.test_rebuild import oids, only, table_rows
from tests.unit.embed.factory import captioned, extracted, transcribed
from tests.unit.projections.factory import Chat
from tests.waiting import eventually

pytestmark = pytest.mark.integration


def workload(chat: Chat) -> list[Any]:
    """Text of every source, a long text in three chunks later edited to one, an edit logged
    before its message, a caption lengthened (the message's chunks renumbered), a deletion and a
    transcript arriving after it."""
    return [
        chat.received("long", LONG, t=1), chat.received("voice", None, t=2, message_type="voice"),
        transcribed(chat, "voice", "the courier left the parcel at the wrong address"),
        chat.received("photo", None, t=3, message_type="image", caption="look at this box"),
        captioned(chat, "photo", "A cardboard box with a torn corner"),
        extracted(chat, "pdf", "INVOICE 2026-0193 total 189.00 EUR"),
        chat.edited("early", "the edited text wins", t=50), chat.received("early", "the original text", t=4),
        chat.received("doomed", "delete me please", t=5), chat.edited("long", "now a short text", t=60),
        chat.edited("photo", f"look at this damaged box {LONG}", t=61), chat.deleted("doomed", t=62),
        transcribed(chat, "doomed", "a transcript arriving after the deletion", t=70),
    ]  # fmt: skip


async def projector_caught_up(db: asyncpg.Connection, settings: Settings) -> None:
    end = await end_offsets(settings, embeddings.TOPIC)

    async def done() -> bool:
        rows = await db.fetch("select partition, next_offset from projection_offsets where projection = $1", PROJECTION)
        stored = {r["partition"]: r["next_offset"] for r in rows}
        return all(stored.get(tp.partition, 0) >= o for tp, o in end.items() if o)

    await eventually(done, timeout=60)


async def test_an_embeddings_rebuild_makes_no_model_call_and_equals_the_live_tables(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    chat = Chat(channel=f"E{uuid.uuid4().hex[:8]}")
    fake = FakeOpenAI()
    await register_vector(db)
    with ThreadedServer(fake.app) as url:
        env = {"OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": f"{url}/v1", "EMBEDDINGS_BATCH_WAIT_MS": "50"}
        configured = settings.model_copy(update={"projector_batch_timeout_ms": 50, "openai_api_key": fake.api_key,
                                                 "openai_base_url": f"{url}/v1"})  # fmt: skip
        with running_stage("streams.embed", settings, tmp_path, **env):
            async with running_projector(configured, PROJECTOR, group=f"test-{uuid.uuid4().hex[:8]}", policy=FAST):
                await publish(settings, workload(chat))

                async def settled() -> dict[str, Any]:
                    found = await chunks(db, chat)
                    done = len(found.get(chat.mid("long"), [])) == 1 and chat.mid("doomed") not in found
                    return found if done and len(found.get(chat.mid("photo"), [])) == 4 else {}

                await eventually(settled, timeout=90)
                producer = make_producer(settings)
                await producer.start()
                await producer.send_and_wait(embeddings.TOPIC, b"not json", key=chat.key.encode())
                await producer.stop()
                await projector_caught_up(db, settings)
                before, old = await table_rows(db, TABLES), await oids(db, TABLES)
                assert [len(before[t]) for t in TABLES] == [8, 6, 1]  # chunks, (message, source), tombstones
                calls = len(fake.calls())
                assert fake.calls("/v1/embeddings")

                report = await rebuild(configured, ["embeddings"], progress=False, workers=2)

                assert len(fake.calls()) == calls  # the vectors come from the log
                p = only(report)
                assert p.swapped and p.match and report.exit_code == 0, p
                assert [(c.table, c.rebuilt.rows) for c in p.comparisons] == list(zip(TABLES, (8, 6, 1)))
                assert p.undecodable == 1
                assert await table_rows(db, TABLES) == before
                new = await oids(db, TABLES)
                assert all(new[t] != old[t] for t in TABLES)
                indexes = {r["indexname"] for r in await db.fetch(
                    "select indexname from pg_indexes where tablename = 'message_embeddings'")}  # fmt: skip
                assert {"message_embeddings_embedding_hnsw_idx", "message_embeddings_chunk_tsv_idx"} <= indexes
                words = await db.fetchval("select count(*) from match_session_words($1, 'courier', 5)", chat.key)
                assert words == 1  # recall's SQL reads the new table

                # the live projector goes on, into the new tables
                await publish(settings, [chat.received("late", "after the swap", t=80)])
                found = await eventually(lambda: _with(db, chat, chat.mid("late")), timeout=60)
                assert found[0][2] == "after the swap"


async def _with(db: asyncpg.Connection, chat: Chat, message_id: str) -> list[Any]:
    return (await chunks(db, chat)).get(message_id, [])
