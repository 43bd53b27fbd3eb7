"""The embed handler on each kind of input: which text it embeds for which source, the events it
writes, deterministic ids, skips without an API key, and the failure record after the retries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from contracts import embeddings
from contracts.embeddings import ChunksReplaced, EmbeddingFailed, EmbeddingSkipped, EmbeddingsRemoved, decode_vector
from runtime.errors import TransientError
from streams.embed.agent import EmbedHandler
from contracts.usage import Usage
from runtime.tokenizer import load_tokenizer
from runtime.embedder import BatchingEmbedder
from streams.embed.logic import EmbedConfig
from tests.unit.embed.factory import Recorder, captioned, extracted, record, transcribed
from tests.unit.projections.factory import Chat, at

CFG = EmbedConfig("text-embedding-3-small", 2, "cl100k_base", 700, 140, 50)
NOW = datetime(2026, 11, 21, tzinfo=UTC)
CHAT = Chat(channel="EMB")


def handler(call: Recorder | None = None) -> tuple[EmbedHandler, Recorder]:
    call = call or Recorder()
    embedder = BatchingEmbedder(call, cache_key="m/2", wait_seconds=0)
    return EmbedHandler(CFG, load_tokenizer("cl100k_base"), embedder, now=lambda: NOW), call


async def produced(h: EmbedHandler, event: object) -> list[embeddings.EmbeddingEvent]:
    return [embeddings.decode_event(o.value) for o in await h(record(event))]


async def test_a_typed_text_becomes_its_chunks_with_vectors() -> None:
    h, call = handler()
    text = " ".join(f"word{i}" for i in range(600))  # > 700 tokens: several chunks
    [event] = await produced(h, CHAT.received("p1", text, t=5))
    assert isinstance(event, ChunksReplaced) and event.source == "text" and event.version_at == at(5)
    assert event.message_id == CHAT.mid("p1") and event.chat_key == CHAT.key
    assert [c.start_token for c in event.chunks] == [560 * i for i in range(len(event.chunks))]
    assert event.chunks[-1].end_token == event.token_count and len(event.chunks) >= 2
    assert call.batches == [[c.text for c in event.chunks]]  # one API call for the message
    assert list(decode_vector(event.chunks[0].embedding)) == [float(len(event.chunks[0].text)), 1.0]
    assert event.model == "text-embedding-3-small" and event.dimensions == 2 and event.tokenizer == "cl100k_base"
    words = sum(len(c.text.split()) for c in event.chunks)  # what the Recorder reports as the call's tokens
    assert event.usage == Usage(model="text-embedding-3-small", calls=1, input_tokens=words)
    [again] = await produced(h, CHAT.received("p2", text, t=6))  # the same text: every chunk from memory
    assert again.usage == Usage(model="text-embedding-3-small", cache_hits=len(event.chunks))  # type: ignore[union-attr]


async def test_the_same_input_is_the_same_event_and_another_text_another() -> None:
    h, _ = handler()
    [a] = await produced(h, CHAT.received("p1", "hello there", t=5))
    [b] = await produced(h, CHAT.received("p1", "hello there", t=5))
    [c] = await produced(h, CHAT.edited("p1", "hello again", t=9))
    assert a.event_id == b.event_id != c.event_id
    assert isinstance(c, ChunksReplaced) and c.message_id == a.message_id and c.version_at == at(9)


async def test_a_media_caption_is_typed_text_and_enrichments_are_their_own_sources() -> None:
    h, _ = handler()
    [caption] = await produced(h, CHAT.received("img", None, message_type="image", caption="our shop front"))
    [transcript] = await produced(h, transcribed(CHAT, "voice", "the parcel arrived damaged", t=30))
    [described] = await produced(h, captioned(CHAT, "img", "A storefront with a red door"))
    [document] = await produced(h, extracted(CHAT, "pdf", "INVOICE 2026-0193 total 189.00 EUR"))
    assert [e.source for e in (caption, transcript, described, document)] == ["text", "transcript", "caption", "document"]  # type: ignore[union-attr]
    assert transcript.version_at == at(30) and transcript.message_id == CHAT.mid("voice")  # type: ignore[union-attr]
    assert described.message_id == caption.message_id  # type: ignore[union-attr]


async def test_an_edit_to_nothing_clears_and_a_deletion_removes() -> None:
    h, _ = handler()
    [cleared] = await produced(h, CHAT.edited("p1", "  ", t=9))
    assert isinstance(cleared, ChunksReplaced) and cleared.chunks == () and cleared.token_count == 0
    [removed] = await produced(h, CHAT.deleted("p1", t=12))
    assert isinstance(removed, EmbeddingsRemoved) and removed.deleted_at == at(12)
    assert removed.message_id == CHAT.mid("p1")


@pytest.mark.parametrize("kind", ["status", "reaction", "no text", "edit without text"])
async def test_what_carries_no_text_writes_nothing(kind: str) -> None:
    h, call = handler()
    event = {
        "status": CHAT.status("p1", "read", 3), "reaction": CHAT.reaction("p1", "👍", 3),
        "no text": CHAT.received("p2", None, message_type="voice"), "edit without text": CHAT.edited("p1", None, 4),
    }[kind]  # fmt: skip
    assert await h(record(event)) == [] and call.batches == []


async def test_without_an_api_key_texts_are_recorded_as_skipped() -> None:
    h = EmbedHandler(CFG, load_tokenizer("cl100k_base"), None, now=lambda: NOW)
    [event] = await produced(h, transcribed(CHAT, "voice", "hello"))
    assert isinstance(event, EmbeddingSkipped) and event.reason == "no_api_key" and event.source == "transcript"
    [removed] = await produced(h, CHAT.deleted("p1", t=12))
    assert isinstance(removed, EmbeddingsRemoved)


async def test_api_errors_propagate_for_the_runner_and_give_up_records_the_failure() -> None:
    h, _ = handler(Recorder(fail=[TransientError("HTTP 500")]))
    rec = record(CHAT.received("p1", "hello", t=1))
    with pytest.raises(TransientError):
        await h(rec)
    [out] = h.give_up(rec, TransientError("HTTP 500"), 5)
    failed = embeddings.decode_event(out.value)
    assert isinstance(failed, EmbeddingFailed) and failed.attempts == 5 and failed.source == "text"
    assert out.key == CHAT.key.encode() and dict(out.headers)["mm-type"] == b"embedding_failed"


async def test_concurrent_records_share_one_api_call() -> None:
    h, call = handler()
    h.embedder = BatchingEmbedder(call, cache_key="m/2", wait_seconds=0.01)
    await asyncio.gather(*(h(record(CHAT.received(f"p{i}", f"message number {i}", t=i))) for i in range(20)))
    assert len(call.batches) == 1 and len(call.batches[0]) == 20
