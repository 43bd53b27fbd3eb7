"""The logs ``bench/rebuild.py`` rebuilds from: wa.messages (the projector benchmark's mix),
wa.media with the enrichment topics, and wa.embeddings, each as (topic, key, value) records.

Every mix holds what makes a projection's merges work: for media, failures before a store,
skips, results logged before their media, re-runs by a newer model, redeliveries; for
embeddings, texts of one and of several chunks, derived sources, edits that replace a source,
deletions and skipped texts (no rows).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from bench.projector_throughput import workload  # the same wa.messages mix, so the figures compare
from contracts import embeddings, enrichment, media, messages
from contracts.embeddings import ChunksReplaced, EmbeddedChunk, EmbeddingSkipped, EmbeddingsRemoved, encode_vector
from tests.fakes.openai_api import embedding
from tests.unit.projections.factory import Chat, at
from tests.unit.projections.test_media_rows import Media

Record = tuple[str, bytes, bytes]
KINDS = (("voice", "audio/ogg"), ("image", "image/jpeg"), ("document", "application/pdf"), ("audio", "audio/mpeg"))
WORDS = [f"word{n}" for n in range(5000)]


def people(chats: int) -> list[Chat]:
    return [Chat(channel="BENCH", chat_id=f"1666{n:07d}", contact_name=f"Person {n}") for n in range(chats)]


def messages_log(events: int, chats: int) -> Iterator[Record]:
    for e in workload(events, chats):
        yield messages.TOPIC, e.chat_key.encode(), messages.encode_event(e)


def media_log(events: int, chats: int) -> Iterator[Record]:
    rng, who, n = random.Random(7), people(chats), 0
    for i in range(events):
        kind, mime = KINDS[i % len(KINDS)]
        m = Media(who[i % chats], f"m{i}", kind=kind, mime=mime, sha256=hashlib.sha256(b"%d" % i).hexdigest())
        for event in _media_events(m, i, rng):
            topic = m.topic(event)
            value = media.encode_event(event) if topic == media.TOPIC else enrichment.encode_event(event)
            yield topic, m.chat.key.encode(), value
            n += 1
            if n == events:
                return


def _media_events(m: Media, i: int, rng: random.Random) -> list[Any]:
    t = i * 0.01
    if i % 20 == 0:
        return [m.media_skipped(t + 1), m.skipped(t + 2)]
    out: list[Any] = [m.stored(t + 2)]
    if i % 10 == 1:
        out.insert(0, m.failed(t + 1))  # a transient failure, then the retry stored it
    if i % 25 == 2:
        out.append(m.stored(t + 2))  # a redelivery
    if i % 30 == 3:
        out.append(m.enrichment_failed(t + 3))
    else:
        out.append(_result(m, f"text of media {i} " + " ".join(rng.choices(WORDS, k=12)), t + 3, "model-a"))
        if i % 8 == 4:
            out.append(_result(m, f"better text of media {i}", t + 9, "model-b"))  # a re-run, newer
    rng.shuffle(out)  # each topic is consumed on its own: results often come first
    return out


def _result(m: Media, text: str, t: float, model: str) -> Any:
    if m.kind in ("voice", "audio"):
        return m.transcribed(text, t, model=model)
    if m.kind == "image":
        return m.captioned(text, t, model=model)
    return m.extracted(text, t, pages=1, model=model)


def embeddings_log(events: int, chats: int, dimensions: int) -> Iterator[Record]:
    rng, who, n, i = random.Random(7), people(chats), 0, 0
    while True:
        for event in _embedding_events(who[i % chats], i, dimensions, rng):
            yield embeddings.TOPIC, event.chat_key.encode(), embeddings.encode_event(event)
            n += 1
            if n == events:
                return
        i += 1


def _embedding_events(chat: Chat, i: int, dimensions: int, rng: random.Random) -> list[Any]:
    base = _envelope(chat, f"m{i}", i * 0.01)
    if i % 50 == 7:
        return [EmbeddingSkipped(**base, event_id=f"skip-{i}", source="text", reason="no_api_key",
                                 input_event_id=f"in-{i}")]  # fmt: skip
    chunks = 3 if i % 10 == 0 else 1
    out = [_replaced(base, i, "text", chunks, 0, dimensions, rng)]
    if i % 6 == 1:
        out.append(_replaced(base, i, "transcript", 1, 0, dimensions, rng))
    if i % 20 == 2:
        out.append(_replaced(base, i, "text", 1, 60, dimensions, rng))  # an edit replaces the text
    if i % 100 == 3:
        out.append(EmbeddingsRemoved(**base, event_id=f"gone-{i}", deleted_at=at(i * 0.01 + 90),
                                     input_event_id=f"in-del-{i}"))  # fmt: skip
    return out


def _envelope(chat: Chat, pmid: str, t: float) -> dict[str, Any]:
    return {"chat_key": chat.key, "occurred_at": at(t), "received_at": at(t + 1), "provider": chat.provider,
            "channel_id": chat.channel, "delivery_id": f"dlv-{pmid}", "message_id": chat.mid(pmid),
            "provider_message_id": pmid}  # fmt: skip


def _replaced(base: dict[str, Any], i: int, source: str, count: int, later: float, dimensions: int,
              rng: random.Random) -> ChunksReplaced:  # fmt: skip
    texts = [" ".join(rng.choices(WORDS, k=20)) for _ in range(count)]
    chunks = tuple(EmbeddedChunk(index=c, start_token=c * 560, end_token=c * 560 + 700, text=text,
                                 embedding=encode_vector(embedding("bench", text, dimensions)))
                   for c, text in enumerate(texts))  # fmt: skip
    version = base["occurred_at"] + timedelta(seconds=later)
    return ChunksReplaced(
        **base, event_id=f"{source}-{i}-{later}", source=source, version_at=version,
        text_sha256=hashlib.sha256(" ".join(texts).encode()).hexdigest(), token_count=700 * count, model="bench",
        dimensions=dimensions, tokenizer="cl100k_base", chunk_size_tokens=700, chunk_overlap_tokens=140,
        chunks=chunks, input_event_id=f"in-{source}-{i}-{later}", produced_at=version,
    )  # fmt: skip
