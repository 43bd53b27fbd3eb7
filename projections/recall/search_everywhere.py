"""Recall across every chat, for the console's search box: the messages of any chat that answer
a question, by meaning and by exact words, fused as ``projections.recall.search`` fuses one
chat's lists (reciprocal rank fusion).

- by meaning: the chunks nearest the query in message_embeddings, through its HNSW index with no
  chat filter (the index's natural use);
- by words: chat_messages through the GIN index on their words (migration 0009), with the same
  reading of the question (``recall_words``, ``recall_query``, ``recall_enough_words``). A word
  common enough to match much of the table is bounded: the newest ``WORD_POOL`` matches are
  ranked, looked for in the last week first, then 60 days, a year, everything (``WINDOWS``),
  so an order number is found wherever it is and "thanks" does not read a million rows.

Deleted messages are skipped; erased and expired ones are not in the tables to begin with.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import asyncpg

from projections.recall.search import RRF_K, QueryEmbedder, RecallConfig, RecallDisabled, Semantic

WORD_POOL = 2_000
CANDIDATES = 50

# The words list's pool: the newest messages received since $3 (null: ever) holding any word of
# the question, at most $4 of them, through the words index and, when bounded, the receipt-time
# index (the two bitmaps intersected); then those with enough of the words, best ranked first.
# $1 query text, $2 candidates, $3 since, $4 pool size. ``pooled``: how many the pool held.
WORDS_SQL = """
with q as (select recall_words($1) as words),
pool as (
    select m.id, m.provider_timestamp, message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text) as doc
    from chat_messages m, q
    where cardinality(q.words) > 0
      and message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text) @@ recall_query(q.words)
      and ($3::timestamptz is null or m.received_at >= $3) and m.deleted_at is null
    order by m.provider_timestamp desc limit $4
)
select p.id, count(*) over () as pooled
from pool p, q
where recall_enough_words(p.doc, q.words)
order by ts_rank_cd(p.doc, recall_query(q.words)) desc, p.provider_timestamp desc
limit $2
"""
# Newest first, a window at a time: a common word fills the pool from the last week's messages
# alone, an order number is looked for in everything.
WINDOWS: tuple[timedelta | None, ...] = (timedelta(days=7), timedelta(days=60), timedelta(days=365), None)

# $1 query vector (null: words only), $2 query text, $3 candidates per list, $4 the words list's
# message ids, best first, $5 RRF k, $6 hits.
EVERYWHERE_SQL = """
with q as (select recall_words($2) as words),
meaning as (
    select e.message_id, min(e.embedding <=> $1::vector) as distance
    from (select message_id, embedding from message_embeddings
          where $1::vector is not null order by embedding <=> $1::vector limit $3 * 3) e
    group by e.message_id order by distance limit $3
),
words as (select w.message_id, w.position from unnest($4::text[]) with ordinality as w(message_id, position)),
ranked as (
    select message_id, 1.0 / ($5 + row_number() over (order by distance)) as score, true as by_meaning,
           false as by_words, 1 - distance as similarity from meaning
    union all
    select message_id, 1.0 / ($5 + position), false, true, null from words
),
fused as (
    select message_id, sum(score) as score, bool_or(by_meaning) as by_meaning, bool_or(by_words) as by_words,
           max(similarity) as similarity
    from ranked group by message_id order by score desc limit $6
)
select f.message_id, f.score, f.by_meaning, f.by_words, f.similarity, m.chat_key, m.provider_timestamp,
       m.direction, m.sender_name, m.sender_id, m.message_type,
       coalesce(
           (select t from unnest(array[m.body, m.caption, m.transcript, m.extracted_text]) t
            where t is not null and cardinality(q.words) > 0
              and to_tsvector('simple'::regconfig, left(t, 100000)) @@ recall_query(q.words) limit 1),
           (select chunk_text from message_embeddings x where x.message_id = m.id order by chunk_index limit 1),
           m.body, m.caption, m.transcript, m.extracted_text, '') as text,
       coalesce(c.group_name, c.contact_name, c.contact_phone, c.chat_id) as chat_name
from fused f join chat_messages m on m.id = f.message_id join chats c on c.chat_key = m.chat_key, q
where m.deleted_at is null
order by f.score desc, m.provider_timestamp desc
"""


@dataclass(frozen=True)
class Hit:
    message_id: str
    chat_key: str
    chat_name: str | None
    occurred_at: datetime
    direction: str
    sender: str | None
    message_type: str
    text: str
    score: float
    similarity: float | None
    matched: Literal["meaning", "words", "both"]


@dataclass(frozen=True)
class Everywhere:
    hits: list[Hit]
    semantic: Semantic


async def search_everywhere(
    pool: asyncpg.Pool | asyncpg.Connection, embedder: QueryEmbedder | None, query: str, k: int = 20, *,
    config: RecallConfig = RecallConfig(), now: datetime | None = None,
) -> Everywhere:  # fmt: skip
    """The ``k`` messages of any chat that best answer ``query``, best first. ``pool`` needs the
    vector codec, as ``search`` does."""
    reason = config.disabled_reason
    if reason is not None:
        raise RecallDisabled(reason)
    semantic = Semantic(True) if embedder is not None else Semantic(False, config.without_embedder)
    if not query.strip():
        return Everywhere([], semantic)
    k = max(1, min(k, config.limit))
    vector = None
    if embedder is not None:
        [vector] = await embedder.embed([query], [len(query.encode()) // 2 + 1])
    candidates = max(CANDIDATES, 2 * k)
    async with _connection(pool) as conn, conn.transaction():
        # the HNSW scan returns at most ef_search rows: as many as the meaning list reads
        await conn.execute("select set_config('hnsw.ef_search', $1, true)", str(max(config.ef_search, 3 * candidates)))
        words = await _word_candidates(conn, query, candidates, now or datetime.now(UTC))
        rows = await conn.fetch(EVERYWHERE_SQL, vector, query, candidates, words, RRF_K, k)
    return Everywhere([_hit(r, query) for r in rows], semantic)


async def _word_candidates(conn: asyncpg.Connection, query: str, candidates: int, now: datetime) -> list[str]:
    """The words list, best first: from the newest window whose pool fills, else from everything."""
    rows: list[asyncpg.Record] = []
    for window in WINDOWS:
        rows = await conn.fetch(WORDS_SQL, query, candidates, now - window if window else None, WORD_POOL)
        if rows and rows[0]["pooled"] >= WORD_POOL:
            break
    return [r["id"] for r in rows]


@asynccontextmanager
async def _connection(pool: asyncpg.Pool | asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(pool, asyncpg.Connection):
        yield pool
    else:
        async with pool.acquire() as conn:
            yield conn


def passage(text: str, query: str, width: int = 300) -> str:
    """``text``, or past ``2 * width`` characters the part around the first query word it holds."""
    if len(text) <= 2 * width:
        return text
    lowered = text.lower()
    places = [lowered.find(w) for w in re.findall(r"\w+", query.lower()) if len(w) >= 3 or w.isdigit()]
    at = min((p for p in places if p >= 0), default=0)
    start = max(0, at - width // 2)
    return ("…" if start else "") + text[start:start + 2 * width] + ("…" if start + 2 * width < len(text) else "")


def _hit(r: asyncpg.Record, query: str) -> Hit:
    meaning, words = r["by_meaning"], r["by_words"]
    return Hit(
        message_id=r["message_id"], chat_key=r["chat_key"], chat_name=r["chat_name"], occurred_at=r["provider_timestamp"],
        direction=r["direction"], sender=r["sender_name"] or r["sender_id"], message_type=r["message_type"],
        text=passage(r["text"], query), score=float(r["score"]),
        similarity=float(r["similarity"]) if r["similarity"] is not None else None,
        matched="both" if meaning and words else ("meaning" if meaning else "words"),
    )  # fmt: skip
