"""The embed worker (a real Faust process) and the embeddings projector against the real broker and
Postgres, with the fake OpenAI server: typed text, a voice note's transcript, an image's typed and
AI captions and a PDF's text become chunks in message_embeddings; an edit replaces a message's
chunks with none of the old left; an edit logged before its message still wins; a deletion removes
everything, and a transcript arriving after it is not embedded back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import embeddings, enrichment, messages
from contracts.settings import Settings
from msgmem.usage import fold
from runtime.kafka import end_offsets, make_producer
from projections.batch import RetryPolicy
from projections.consumer import running_projector
from projections.embeddings.main import PROJECTOR
from projections.embeddings.store import PROJECTION
from runtime.tokenizer import load_tokenizer
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.server import ThreadedServer
from tests.fakes.stages import running_stage
from tests.unit.embed.factory import captioned, extracted, topic_of, transcribed
from tests.unit.projections.factory import Chat
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration
LONG = " ".join(f"word{i}" for i in range(700))  # 1,400 tokens: 3 chunks of 700 with 140 overlap


async def publish(settings: Settings, events: Sequence[Any]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for e in events:
            topic = topic_of(e)
            value = messages.encode_event(e) if topic == messages.TOPIC else enrichment.encode_event(e)
            await producer.send_and_wait(topic, value, key=e.chat_key.encode(), headers=[("mm-type", e.type.encode())])
    finally:
        await producer.stop()


async def start_at_end(db: asyncpg.Connection, settings: Settings) -> None:
    """The projector reads only what this test produces from here on."""
    for tp, offset in (await end_offsets(settings, embeddings.TOPIC)).items():
        await db.execute("insert into projection_offsets (projection, topic, partition, next_offset) values ($1, $2, $3, $4)"
                         " on conflict (projection, topic, partition) do update set next_offset = excluded.next_offset",
                         PROJECTION, embeddings.TOPIC, tp.partition, offset)  # fmt: skip


async def chunks(db: asyncpg.Connection, chat: Chat) -> dict[str, list[tuple[Any, ...]]]:
    rows = await db.fetch("select message_id, chunk_index, source, chunk_text, start_token, end_token, chunk_count "
                          "from message_embeddings where chat_key = $1 order by message_id, chunk_index", chat.key)  # fmt: skip
    out: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        out.setdefault(r["message_id"], []).append(tuple(r)[1:])
    return out


async def test_texts_become_chunks_and_edits_and_deletions_replace_them(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:  # fmt: skip
    chat = Chat(channel=f"E{uuid.uuid4().hex[:8]}")
    fake = FakeOpenAI()
    first = [
        chat.received("long", LONG, t=1),
        chat.received("voice", None, t=2, message_type="voice"),
        transcribed(chat, "voice", "the courier left the parcel at the wrong address"),
        chat.received("photo", None, t=3, message_type="image", caption="look at this box"),
        captioned(chat, "photo", "A cardboard box with a torn corner"),
        extracted(chat, "pdf", "INVOICE 2026-0193 total 189.00 EUR"),
        chat.edited("early", "the edited text wins", t=50),  # logged before its message
        chat.received("early", "the original text", t=4),
        chat.received("doomed", "delete me please", t=5),
    ]
    start = await end_offsets(settings, embeddings.TOPIC)
    await start_at_end(db, settings)
    with ThreadedServer(fake.app) as url:
        env = {"OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": f"{url}/v1", "EMBEDDINGS_BATCH_WAIT_MS": "50"}
        with running_stage("streams.embed", settings, tmp_path, **env):
            async with running_projector(settings.model_copy(update={"projector_batch_timeout_ms": 50}), PROJECTOR,
                                            group=f"test-{uuid.uuid4().hex[:8]}",
                                            policy=RetryPolicy(2, 0.01, 0.5)) as running:  # fmt: skip
                await asyncio.wait_for(running.projector.ready.wait(), 60)
                await publish(settings, first)

                async def first_state() -> dict[str, list[tuple[Any, ...]]]:
                    found = await chunks(db, chat)
                    want = {chat.mid(p) for p in ("long", "voice", "photo", "pdf", "early", "doomed")}
                    return found if set(found) == want and len(found[chat.mid("photo")]) == 2 else {}

                before = await eventually(first_state, timeout=90)
                tokens = len(load_tokenizer("cl100k_base").encode(LONG))
                assert tokens == 1400
                assert [(r[3], r[4]) for r in before[chat.mid("long")]] == [(0, 700), (560, 1260), (1120, 1400)]
                assert [(r[0], r[5]) for r in before[chat.mid("long")]] == [(0, 3), (1, 3), (2, 3)]
                assert [(r[0], r[1], r[5]) for r in before[chat.mid("photo")]] == [(0, "text", 2), (1, "caption", 2)]
                assert before[chat.mid("voice")][0][1:3] == ("transcript", "the courier left the parcel at the wrong address")
                assert before[chat.mid("pdf")][0][1] == "document"
                assert [r[2] for r in before[chat.mid("early")]] == ["the edited text wins"]

                await publish(settings, [
                    chat.edited("long", "now a short text", t=60),
                    chat.edited("photo", "look at this damaged box, twice as long a caption now", t=61),
                    chat.deleted("doomed", t=62),
                    transcribed(chat, "doomed", "a transcript arriving after the deletion", t=70),
                ])  # fmt: skip

                async def second_state() -> dict[str, list[tuple[Any, ...]]]:
                    found = await chunks(db, chat)
                    done = len(found.get(chat.mid("long"), [])) == 1 and chat.mid("doomed") not in found
                    photo = found.get(chat.mid("photo"), [])
                    return found if done and photo and "damaged" in photo[0][2] else {}

                after = await eventually(second_state, timeout=90)
                await asyncio.sleep(1)  # the late transcript has had its chance
                after = await chunks(db, chat)
    assert after[chat.mid("long")] == [(0, "text", "now a short text", 0, 4, 1)]  # no stale chunk of the old text
    assert [(r[0], r[1], r[5]) for r in after[chat.mid("photo")]] == [(0, "text", 2), (1, "caption", 2)]
    assert chat.mid("doomed") not in after
    assert await db.fetchval("select count(*) from message_embedding_deletions where message_id = $1", chat.mid("doomed")) == 1
    events = [embeddings.decode_event(r.value) for r in await read_since(settings, embeddings.TOPIC, start)]
    mine = [e for e in events if e.chat_key == chat.key]
    assert any(isinstance(e, embeddings.EmbeddingsRemoved) for e in mine)
    calls = fake.calls("/v1/embeddings", ok_only=True)
    assert calls and max(int(c.detail["inputs"]) for c in calls) > 1  # chunks share calls  # type: ignore[call-overload]
    # Each event carries its share of the calls it took part in: summed (once per event id), the calls paid.
    [paid] = fold(events, settings.ai_prices).values()
    assert paid.calls == len(calls) and paid.input_tokens > 0 and paid.spend_usd > 0


async def test_without_an_api_key_texts_are_recorded_as_skipped(settings: Settings, tmp_path: Path) -> None:
    chat = Chat(channel=f"E{uuid.uuid4().hex[:8]}")
    start = await end_offsets(settings, embeddings.TOPIC)
    await publish(settings, [chat.received("p1", "hello without a key", t=1)])
    with running_stage("streams.embed", settings, tmp_path, OPENAI_API_KEY=""):

        async def skipped() -> list[embeddings.EmbeddingEvent]:
            found = [embeddings.decode_event(r.value) for r in await read_since(settings, embeddings.TOPIC, start)]
            return [e for e in found if e.chat_key == chat.key]

        [event] = await eventually(skipped, timeout=90)
    assert isinstance(event, embeddings.EmbeddingSkipped) and event.reason == "no_api_key"
