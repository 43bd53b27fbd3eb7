"""Recall: the chunks of one chat that answer a question, by meaning and by exact words.

``recall(pool, embedder, chat, query, k, min_similarity)`` embeds the query (same model and
dimensions as the chunks) and runs one SQL statement with two candidate lists:

- by meaning: ``match_session_messages`` (migration 0006): cosine similarity to the query,
  at least ``min_similarity``, exact for a chat of up to RECALL_EXACT_CHAT_CHUNKS chunks,
  HNSW with iterative scans above;
- by words: ``match_session_words`` (migrations 0007, 0009): Postgres full text over the
  chunks' ``chunk_tsv`` ('simple' configuration: words as written, so "4271", "INV-2026-0193"
  or "Silva" match exactly), any query word matching, ranked by ``ts_rank_cd`` (cover density,
  length-normalised); and ``match_session_texts`` (migration 0009): the same over every
  message text in ``chat_messages`` (body, caption, transcript, extracted text), for the
  texts no matching chunk stands for: with no embeddings at all (no OPENAI_API_KEY), not yet
  embedded, or past EMBEDDINGS_MAX_CHUNKS. Such a snippet is the text itself (or, over 1,000
  characters, the passages around the words) with no chunk index, token span or similarity.
  A hit must contain at least half of the query's distinct words: "order 4271" finds every
  chunk naming 4271, while "what did they say about the delivery" does not return every chunk
  containing "the". A chat's rows are tested directly rather than through the GIN index,
  whose bitmap for a common word spans the whole table.

The two lists are fused by reciprocal rank fusion, score = sum over lists of 1 / (60 +
rank): a chunk high in either list ranks high, one in both higher still; no score scales
need reconciling. Each snippet carries its cosine similarity (also when found by words),
which list(s) found it, and the message's time, sender and direction from chat_messages.
Chunks of deleted messages are never returned: the projection removes them, and both
lists also skip messages chat_messages already marks deleted.

Without an embedder (no OPENAI_API_KEY), or for a chat none of whose messages is embedded,
only the word list runs, and ``Answer.semantic`` says why. A chat key no chat has raises
``UnknownChat``. ENABLE_VECTOR_RECALL=false or EMBEDDINGS_RECALL_LIMIT=0 switch recall off:
``RecallDisabled``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import asyncpg

from contracts.settings import Settings

RRF_K = 60
MIN_CANDIDATES = 30
MAX_CANDIDATES = 200


class RecallDisabled(Exception):
    """Recall is switched off in settings; the message says which setting."""


class UnknownChat(LookupError):
    """No chat has the key asked for (the message does not repeat it)."""

    def __init__(self) -> None:
        super().__init__("no chat has this key")


class QueryEmbedder(Protocol):
    async def embed(self, texts: Sequence[str], tokens: Sequence[int]) -> list[str]:
        """Base64 float32 vectors of ``texts`` (``runtime.embedder.BatchingEmbedder``)."""
        ...


@dataclass(frozen=True)
class RecallConfig:
    enabled: bool = True
    limit: int = 50
    exact_chat_chunks: int = 20_000
    ef_search: int = 200
    without_embedder: str = "no query embedder was given"  # why there is none, when there is none

    @classmethod
    def from_settings(cls, settings: Settings) -> "RecallConfig":
        key = settings.openai_api_key
        why = "OPENAI_API_KEY is not set" if key is None or not key.get_secret_value() else cls.without_embedder
        return cls(settings.enable_vector_recall, settings.embeddings_recall_limit, settings.recall_exact_chat_chunks,
                   settings.recall_ef_search, why)  # fmt: skip

    @property
    def disabled_reason(self) -> str | None:
        if not self.enabled:
            return "recall is switched off (ENABLE_VECTOR_RECALL=false)"
        if self.limit <= 0:
            return "recall is switched off (EMBEDDINGS_RECALL_LIMIT=0)"
        return None


@dataclass(frozen=True)
class Snippet:
    message_id: str
    chunk_index: int | None  # None: found in the message's text, which has no matching chunk
    source: str  # text (typed), transcript (voice), caption (image), document (PDF)
    text: str
    start_token: int | None
    end_token: int | None
    similarity: float | None  # cosine similarity to the query; None without a query vector
    score: float  # reciprocal rank fusion
    matched: Literal["meaning", "words", "both"]
    occurred_at: datetime | None  # the message's time (None until the messages projector has it)
    sender_id: str | None
    sender_name: str | None
    direction: str | None
    message_type: str | None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["occurred_at"] = self.occurred_at.isoformat() if self.occurred_at else None
        return out


@dataclass(frozen=True)
class Semantic:
    """Whether the answer was ranked by meaning too, and if not, why."""

    used: bool
    reason: str | None = None


@dataclass(frozen=True)
class Answer:
    snippets: list[Snippet]
    semantic: Semantic


CHAT_SQL = """
select exists (select 1 from chats where chat_key = $1) as known,
       exists (select 1 from message_embeddings where chat_key = $1) as embedded
"""

# $1 chat, $2 query vector (null: words only), $3 query text, $4 candidates per list,
# $5 min similarity, $6 exact-search chat size, $7 ef_search, $8 RRF k, $9 snippets.
# A text hit stands for its (message, source) only when no chunk of them matched the words.
# Texts have no stored tsvector (see migration 0009): a chat's messages are read directly only
# up to 2,000 of them, each one's words computed on the fly; a larger chat uses the GIN index.
# The fused rows (a few dozen) look up their chunk and message by primary key: written as plain
# joins, the planner (expecting 1,000 rows from each function) hashed the whole of chat_messages
# on a small table (7 ms of a 10 ms statement at 20,000 messages; at 1,000,000 it chose the index
# itself); a lateral subquery with a limit is not flattened into a join, so it stays an index
# lookup per row whatever the estimates.
RECALL_SQL = """
with meaning as (
    select v.message_id, v.chunk_index, v.source,
           row_number() over (order by v.similarity desc, v.message_id, v.chunk_index) as rank
    from match_session_messages($1::text, $2::vector, $4::integer, $5::float8, $6::integer, $7::integer) v
    where $2::vector is not null
), chunk_words as (
    select w.message_id, w.chunk_index, e.source, w.rank
    from match_session_words($1::text, $3::text, $4::integer, $6::integer) w
    join message_embeddings e on e.message_id = w.message_id and e.chunk_index = w.chunk_index
), text_words as (
    select t.message_id, null::integer as chunk_index, t.source, t.rank, t.excerpt
    from match_session_texts($1::text, $3::text, $4::integer, least($6::integer, 2000)) t
    where not exists (select 1 from chunk_words c where c.message_id = t.message_id and c.source = t.source)
), words as (
    select x.message_id, x.chunk_index, x.source, x.excerpt,
           row_number() over (order by x.rank desc, x.message_id, x.chunk_index nulls last, x.source) as rank
    from (select c.*, null::text as excerpt from chunk_words c union all select * from text_words) x
), fused as (
    select f.message_id, f.chunk_index, f.source, max(f.excerpt) as excerpt,
           sum(1.0 / ($8::integer + f.rank))::float8 as score,
           bool_or(f.list = 'meaning') as by_meaning, bool_or(f.list = 'words') as by_words
    from (select m.*, null::text as excerpt, 'meaning' as list from meaning m
          union all select w.message_id, w.chunk_index, w.source, w.rank, w.excerpt, 'words' from words w) f
    group by f.message_id, f.chunk_index, f.source
)
select f.message_id, f.chunk_index, f.source, coalesce(e.chunk_text, f.excerpt) as chunk_text, e.start_token,
       e.end_token, (1 - (e.embedding <=> $2::vector))::float8 as similarity, f.score, f.by_meaning, f.by_words,
       m.provider_timestamp, m.sender_id, m.sender_name, m.direction, m.message_type
from fused f
left join lateral (
    select x.message_id, x.chunk_text, x.start_token, x.end_token, x.embedding from message_embeddings x
    where x.message_id = f.message_id and x.chunk_index = f.chunk_index limit 1
) e on true
left join lateral (
    select y.provider_timestamp, y.sender_id, y.sender_name, y.direction, y.message_type from chat_messages y
    where y.id = f.message_id limit 1
) m on true
where e.message_id is not null or f.chunk_index is null
order by f.score desc, similarity desc nulls last, f.message_id, f.chunk_index nulls last, f.source
limit $9::integer
"""


def _matched(by_meaning: bool, by_words: bool) -> Literal["meaning", "words", "both"]:
    if by_meaning and by_words:
        return "both"
    return "meaning" if by_meaning else "words"


async def recall(
    pool: asyncpg.Pool | asyncpg.Connection, embedder: QueryEmbedder | None, chat: str, query: str, k: int = 10,
    min_similarity: float = 0.3, *, config: RecallConfig = RecallConfig(),
) -> list[Snippet]:  # fmt: skip
    """The ``k`` best snippets of chat ``chat`` for ``query``, best first (``search`` without the why)."""
    return (await search(pool, embedder, chat, query, k, min_similarity, config=config)).snippets


async def search(
    pool: asyncpg.Pool | asyncpg.Connection, embedder: QueryEmbedder | None, chat: str, query: str, k: int = 10,
    min_similarity: float = 0.3, *, config: RecallConfig = RecallConfig(),
) -> Answer:  # fmt: skip
    """The ``k`` best snippets of chat ``chat`` for ``query``, best first, and whether they were
    ranked by meaning (and why not).

    ``pool`` (or one of its connections) needs the vector codec (``projections.embeddings.vectors.register_vector`` as
    its ``init``). Errors of the embeddings API propagate (``TransientError``,
    ``ModelRejected``); ``RecallDisabled`` when settings switch recall off; ``UnknownChat``
    when no chat has the key.
    """
    reason = config.disabled_reason
    if reason is not None:
        raise RecallDisabled(reason)
    found = await pool.fetchrow(CHAT_SQL, chat)
    if not found["known"]:
        raise UnknownChat()
    semantic = _semantic(embedder, found["embedded"], config)
    if not query.strip():
        return Answer([], semantic)
    k = max(1, min(k, config.limit))
    vector = None
    if embedder is not None and semantic.used:
        [vector] = await embedder.embed([query], [len(query.encode()) // 2 + 1])
    candidates = min(max(3 * k, MIN_CANDIDATES), MAX_CANDIDATES)
    rows = await pool.fetch(RECALL_SQL, chat, vector, query, candidates, min_similarity, config.exact_chat_chunks,
                            config.ef_search, RRF_K, k)  # fmt: skip
    snippets = [
        Snippet(
            message_id=r["message_id"], chunk_index=r["chunk_index"], source=r["source"], text=r["chunk_text"],
            start_token=r["start_token"], end_token=r["end_token"], similarity=r["similarity"], score=r["score"],
            matched=_matched(r["by_meaning"], r["by_words"]), occurred_at=r["provider_timestamp"],
            sender_id=r["sender_id"], sender_name=r["sender_name"], direction=r["direction"],
            message_type=r["message_type"],
        )  # fmt: skip
        for r in rows
    ]
    return Answer(snippets, semantic)


def _semantic(embedder: QueryEmbedder | None, embedded: bool, config: RecallConfig) -> Semantic:
    if embedder is None:
        return Semantic(False, config.without_embedder)
    if not embedded:
        return Semantic(False, "no message of this chat has embeddings yet")
    return Semantic(True)
