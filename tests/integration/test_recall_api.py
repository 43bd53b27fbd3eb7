"""Recall against the real Postgres: a chat's messages (typed, voice note, image, PDF) projected by
the messages and embeddings writers, with vectors from the fake OpenAI server (bag of words, so
texts sharing words are close). The recall API runs as ``python -m projections.recall``; the same
search is called in-process as agents would. Found by meaning: what the voice note said; by exact
words: an order number no vector brings up; never: deleted messages or another chat's."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from contracts import embeddings
from contracts.settings import Settings
from msgmem.localstack.processes import Child, env_with, file_sink, free_port
from projections.embeddings.store import EmbeddingsWriter
from projections.embeddings.vectors import register_vector
from projections.items import Item
from projections.messages.store import MessagesWriter
from projections.recall import recall, search
from streams.embed.agent import EmbedHandler, config
from runtime.tokenizer import load_tokenizer
from runtime.embedder import make_embedder
from runtime.openai_client import make_openai
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.server import ThreadedServer
from tests.unit.embed.factory import captioned, extracted, record, transcribed
from tests.unit.projections.factory import Chat

pytestmark = pytest.mark.integration
KEY = "recall-integration-key"
VOICE_NOTE = ("Hi, this is Dana Silva. The courier left the parcel at the wrong address "
              "and it arrived damaged.")  # fmt: skip


@dataclass
class World:
    settings: Settings
    fake: FakeOpenAI
    chat: Chat
    other: Chat
    pool: asyncpg.Pool


@pytest.fixture
async def world(settings: Settings, db: asyncpg.Connection) -> AsyncIterator[World]:
    fake = FakeOpenAI()
    with ThreadedServer(fake.app) as url:
        configured = settings.model_copy(update={
            "openai_api_key": SecretStr(fake.api_key), "openai_base_url": f"{url}/v1", "recall_api_key": SecretStr(KEY),
        })  # fmt: skip
        chat, other = Chat(channel=f"R{uuid.uuid4().hex[:8]}"), Chat(channel=f"R{uuid.uuid4().hex[:8]}", chat_id="1555999")
        messages = [
            chat.received("voice", None, t=10, message_type="voice"),
            chat.received("invoice", "Can you send me the invoice for order 4271?", t=20),
            chat.received("thanks", "Thanks, have a nice weekend!", t=30),
            chat.received("photo", None, t=40, message_type="image"),
            chat.received("pdf", None, t=50, message_type="document", caption="here is the invoice"),
            chat.received("secret", "my card number is 4111 and the parcel code 7788", t=60),
            chat.received("lagging", "the parcel code is 7788, parcel delivery tomorrow", t=70),
            other.received("elsewhere", "the parcel delivery was damaged, courier at the wrong address", t=5),
        ]
        derived = [
            transcribed(chat, "voice", VOICE_NOTE), captioned(chat, "photo", "A cardboard box with a torn corner"),
            extracted(chat, "pdf", "INVOICE 2026-0193\nTotal 189.00 EUR\nThank you for your order."),
        ]  # fmt: skip
        client = make_openai(configured)
        assert client is not None
        embedder = make_embedder(configured, client, wait_seconds=0)
        handler = EmbedHandler(config(configured), load_tokenizer("cl100k_base"), embedder)
        events = [embeddings.decode_event(o.value) for e in [*messages, *derived] for o in await handler(record(e))]
        events += [embeddings.decode_event(o.value) for o in await handler(record(chat.deleted("secret", t=61)))]
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4, init=register_vector)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await MessagesWriter(redact_deleted=False).write(conn, [Item(m, "wa.messages", 0, n, None, b"{}")
                                                                        for n, m in enumerate(messages)])  # fmt: skip
                await EmbeddingsWriter().write(conn, [Item(e, embeddings.TOPIC, 0, n, None, b"{}")
                                                      for n, e in enumerate(events)])  # fmt: skip
            # The messages projector has seen this deletion; the embeddings projector not yet.
            await db.execute("update chat_messages set deleted_at = now() where id = $1", chat.mid("lagging"))
            yield World(configured, fake, chat, other, pool)
        finally:
            await pool.close()
            await embedder.aclose()
            await client.close()


@contextmanager
def recall_service(settings: Settings, log_dir: Path, module: str = "projections.recall", **more_env: str) -> Iterator[str]:
    """``python -m module`` (the recall app; ``msgmem.readside`` adds the console's pipeline) on a free port."""
    port = free_port()
    env = {
        "DATABASE_URL": settings.database_url, "OPENAI_BASE_URL": settings.openai_base_url, "RECALL_API_KEY": KEY,
        "RECALL_PORT": str(port), "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
        "OPENAI_API_KEY": settings.openai_api_key.get_secret_value() if settings.openai_api_key else "",
    } | more_env  # fmt: skip
    child = Child("recall", [sys.executable, "-m", module], ready_pattern="Application startup complete",
                  env=env_with(env), cwd=log_dir, sink=file_sink(log_dir / "recall.log"))  # fmt: skip
    child.start()
    try:
        child.wait_ready(60)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stop()


async def ask(client: httpx.AsyncClient, base: str, chat: Chat, q: str, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get(f"{base}/chats/{chat.key}/recall", params={"q": q, **params},
                              headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["snippets"]  # type: ignore[no-any-return]


async def test_recall_over_http_by_meaning_by_words_and_never_deleted(world: World, tmp_path: Path) -> None:
    chat = world.chat
    with recall_service(world.settings, tmp_path) as base:
        async with httpx.AsyncClient(timeout=10) as client:
            found = await ask(client, base, chat, "what did the customer tell us about the parcel delivery?")
            top = found[0]
            assert top["message_id"] == chat.mid("voice") and top["source"] == "transcript"
            assert top["matched"] in ("meaning", "both") and top["similarity"] >= 0.3
            assert top["text"] == VOICE_NOTE and top["sender_name"] == "Dana Silva" and top["direction"] == "inbound"
            assert top["occurred_at"].startswith("2026-11-20T09:00:10")
            assert chat.mid("lagging") not in {s["message_id"] for s in found}

            # No vector is that close (min_similarity 0.95): the order number is found by its words.
            [order] = await ask(client, base, chat, "status of order 4271", min_similarity=0.95)
            assert order["message_id"] == chat.mid("invoice") and order["matched"] == "words"
            assert order["similarity"] < 0.95 and order["source"] == "text"

            document = await ask(client, base, chat, "INVOICE 2026-0193")
            assert document[0]["message_id"] == chat.mid("pdf") and document[0]["source"] == "document"
            image = await ask(client, base, chat, "photo of a box with a torn corner", min_similarity=0.2)
            assert image[0]["message_id"] == chat.mid("photo") and image[0]["source"] == "caption"

            ids = {s["message_id"] for s in await ask(client, base, chat, "parcel code 7788 card number 4111", k=50,
                                                      min_similarity=-1)}  # fmt: skip
            assert chat.mid("secret") not in ids and chat.mid("lagging") not in ids  # deleted, projected or not
            assert world.other.mid("elsewhere") not in ids

            for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": "nope"}):
                refused = await client.get(f"{base}/chats/{chat.key}/recall", params={"q": "parcel"}, headers=headers)
                assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
            by_header = await client.get(f"{base}/chats/{chat.key}/recall", params={"q": "parcel"},
                                         headers={"X-API-Key": KEY})  # fmt: skip
            assert by_header.status_code == 200
            assert (await client.get(f"{base}/healthz")).json() == {"status": "alive"}
            assert "msgmem_recall_requests_total" in (await client.get(f"{base}/metrics")).text


async def test_recall_in_process_for_agents(world: World) -> None:
    client = make_openai(world.settings)
    assert client is not None
    embedder = make_embedder(world.settings, client, wait_seconds=0)
    try:
        snippets = await recall(world.pool, embedder, world.chat.key, "the parcel arrived damaged", k=3)
        assert snippets[0].message_id == world.chat.mid("voice") and snippets[0].source == "transcript"
        assert len(snippets) <= 3 and all(s.message_id != world.chat.mid("lagging") for s in snippets)
        words_only = await recall(world.pool, None, world.chat.key, "order 4271", k=3)
        assert words_only[0].message_id == world.chat.mid("invoice") and words_only[0].matched == "words"
        assert all(s.similarity is None for s in words_only)  # no query vector without an embedder
    finally:
        await embedder.aclose()
        await client.close()


async def test_words_are_found_alike_through_the_chat_rows_and_through_the_gin_index(world: World) -> None:
    """match_session_words reads a small chat's rows directly and a large chat's through the
    GIN index (exact_chunks decides): both give the same chunks in the same order."""
    for question in ("status of order 4271", "what did they say about the parcel", "the of"):
        direct = await world.pool.fetch("select * from match_session_words($1, $2, 30, 20000)", world.chat.key, question)
        indexed = await world.pool.fetch("select * from match_session_words($1, $2, 30, 0)", world.chat.key, question)
        assert [tuple(r) for r in direct] == [tuple(r) for r in indexed]
    [hit, *_] = await world.pool.fetch("select * from match_session_words($1, 'order 4271')", world.chat.key)
    assert hit["message_id"] == world.chat.mid("invoice")
    assert await world.pool.fetch("select * from match_session_words($1, 'order 4271')", world.other.key) == []


async def test_a_message_without_embeddings_is_found_by_its_text_beside_the_chunks(world: World) -> None:
    """Embedded messages come back as their chunks (never twice); one the embed stage has not
    reached yet comes back as its text, found by words alone."""
    fresh = world.chat.received("fresh", "Please reschedule order 4271 to Friday", t=80)
    async with world.pool.acquire() as conn, conn.transaction():
        await MessagesWriter(redact_deleted=False).write(conn, [Item(fresh, "wa.messages", 0, 99, None, b"{}")])
    client = make_openai(world.settings)
    assert client is not None
    embedder = make_embedder(world.settings, client, wait_seconds=0)
    try:
        answer = await search(world.pool, embedder, world.chat.key, "order 4271", k=10, min_similarity=0.95)
    finally:
        await embedder.aclose()
        await client.close()
    assert answer.semantic.used is True
    by_id = {}
    for s in answer.snippets:
        assert s.message_id not in by_id, "a message found twice"
        by_id[s.message_id] = s
    invoice, new = by_id[world.chat.mid("invoice")], by_id[world.chat.mid("fresh")]
    assert (invoice.chunk_index, invoice.source) == (0, "text") and invoice.start_token == 0
    assert (new.chunk_index, new.start_token, new.similarity, new.matched) == (None, None, None, "words")
    assert new.text == "Please reschedule order 4271 to Friday" and new.source == "text"
