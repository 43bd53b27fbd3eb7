"""Word recall with no OPENAI_API_KEY, through the real broker and Postgres: messages logged on
wa.messages and projected by the messages projector, the text derived from media copied from
chat_media as the media projector does, no embeddings at all. The recall API (``python -m
projections.recall``, no key) finds every kind of message text by its words, says why it did
not rank by meaning, never returns a deleted message, and answers 404 for an unknown chat."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from contracts.settings import Settings
from projections.embeddings.vectors import register_vector
from projections.media import handoff
from projections.recall import search
from tests.integration.test_projector import caught_up, produce, projector, start_at_end
from tests.integration.test_recall_api import KEY, recall_service
from tests.unit.projections.factory import Chat

pytestmark = pytest.mark.integration

LONG_PDF = " ".join(f"Line {n} of the terms and conditions, nothing to see here." for n in range(200))
LONG_PDF += " The warranty claim number is WC-99812 for the broken chair. " + LONG_PDF


@pytest.fixture
async def chat(settings: Settings, db: asyncpg.Connection) -> AsyncIterator[Chat]:
    await start_at_end(db, settings)
    chat = Chat(channel=f"W{uuid.uuid4().hex[:8]}")
    events = [
        chat.received("order", "Hi, is order 4271 still arriving on Thursday?", t=10),
        chat.sent("reply", "Yes Dana, Thursday after 3 pm.", t=20),
        chat.received("photo", None, t=30, message_type="image", caption="Here is the signed receipt"),
        chat.received("voice", None, t=40, message_type="voice"),
        chat.received("pdf", None, t=50, message_type="document"),
        chat.received("gone", "my card number is 4111 4111", t=60), chat.deleted("gone", 61),
    ]  # fmt: skip
    async with projector(settings):
        await produce(settings, events)
        await caught_up(db, settings)
    for pmid, kind, column, text in [("voice", "voice", "transcript", "The courier left the parcel at the gate"),
                                     ("pdf", "document", "extracted_text", LONG_PDF)]:  # fmt: skip
        await db.execute(f"insert into chat_media (id, message_id, chat_key, kind, {column}, status)"
                         " values ($1, $1, $2, $3, $4, 'stored')", chat.mid(pmid), chat.key, kind, text)  # fmt: skip
    await handoff.copy_text(db, [chat.mid("voice"), chat.mid("pdf")], redact_deleted=False)
    assert await db.fetchval("select count(*) from message_embeddings") == 0
    yield chat


async def ask(client: httpx.AsyncClient, base: str, chat_key: str, q: str) -> httpx.Response:
    return await client.get(f"{base}/chats/{chat_key}/recall", params={"q": q, "k": 5},
                            headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip


async def test_without_openai_every_message_text_is_found_by_its_words(
    settings: Settings, chat: Chat, tmp_path: Path
) -> None:
    unconfigured = settings.model_copy(update={"openai_api_key": None, "recall_api_key": SecretStr(KEY)})
    with recall_service(unconfigured, tmp_path) as base:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await ask(client, base, chat.key, "when does order 4271 arrive")
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["semantic"] == {"used": False, "reason": "OPENAI_API_KEY is not set"}
            assert body["by_meaning"] is False
            [order] = body["snippets"]
            assert order["message_id"] == chat.mid("order") and order["text"].startswith("Hi, is order 4271")
            assert (order["source"], order["matched"], order["chunk_index"], order["similarity"]) == (
                "text", "words", None, None)  # fmt: skip
            assert order["sender_name"] == "Dana Silva" and order["occurred_at"].startswith("2026-11-20T09:00:10")

            found: dict[str, dict[str, Any]] = {}
            for q in ("signed receipt", "parcel courier", "warranty claim WC-99812", "thursday"):
                snippets = (await ask(client, base, chat.key, q)).json()["snippets"]
                found[q] = snippets[0]
            receipt = found["signed receipt"]
            assert (receipt["source"], receipt["message_id"]) == ("caption", chat.mid("photo"))
            assert found["parcel courier"]["source"] == "transcript"
            pdf = found["warranty claim WC-99812"]
            assert pdf["source"] == "document" and pdf["message_id"] == chat.mid("pdf")
            assert "WC-99812" in pdf["text"] and len(pdf["text"]) < 1000 < len(LONG_PDF)  # the passage, not the file
            assert found["thursday"]["message_id"] in {chat.mid("order"), chat.mid("reply")}

            deleted = (await ask(client, base, chat.key, "card number 4111")).json()["snippets"]
            assert chat.mid("gone") not in {s["message_id"] for s in deleted}

            unknown = await ask(client, base, f"{chat.key}0", "order 4271")
            assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_chat"
            assert chat.key not in unknown.text


async def test_texts_are_found_alike_through_the_chat_rows_and_through_the_gin_index(
    settings: Settings, chat: Chat
) -> None:
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2, init=register_vector)
    try:
        for question in ("order 4271", "thursday after", "the parcel", "WC-99812", "the of", ""):
            direct = await pool.fetch("select * from match_session_texts($1, $2, 30, 20000)", chat.key, question)
            indexed = await pool.fetch("select * from match_session_texts($1, $2, 30, 0)", chat.key, question)
            assert [tuple(r) for r in direct] == [tuple(r) for r in indexed], question
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("set local enable_seqscan = off")
            plan = "\n".join(r[0] for r in await conn.fetch(
                "explain select id from chat_messages"
                " where message_text_tsv(body, caption, transcript, extracted_text) @@ 'parcel'::tsquery"))
        assert "chat_messages_text_tsv_idx" in plan, plan  # the function is inlined and matches the index
        answer = await search(pool, None, chat.key, "order 4271")
        assert answer.semantic.used is False and answer.snippets[0].message_id == chat.mid("order")
    finally:
        await pool.close()
