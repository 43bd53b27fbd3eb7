"""Writes a folded batch of wa.embeddings events to message_embeddings and its two state tables.

Runs inside the transaction ``projections.postgres.PostgresProjectionStore`` opens per batch
(with the batch's offsets), so a message's chunks change all at once or not at all:
deletions first (rows and state go, a tombstone stays), then the replacements that are
still news (not of a deleted message, not older than what is stored, not the very event
already applied), laid out by ``projections.embeddings.logic.layout``. Every statement is
one bulk ``unnest`` over the batch. Connections need the vector codec
(``projections.embeddings.vectors.register_vector``).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from contracts.embeddings import ChunksReplaced, EmbeddingEvent
from projections.embeddings.logic import Ops, StoredRow, fold, layout
from projections.items import Item

PROJECTION = "message_embeddings"
TABLES = ("message_embeddings", "message_embedding_sources", "message_embedding_deletions")

REMOVE = """
with d as (
    insert into message_embedding_deletions as t (message_id, chat_key, deleted_at)
    select * from unnest($1::text[], $2::text[], $3::timestamptz[])
    on conflict (message_id) do update set deleted_at = least(t.deleted_at, excluded.deleted_at)
    returning t.message_id
), rows as (
    delete from message_embeddings e using d where e.message_id = d.message_id
)
delete from message_embedding_sources s using d where s.message_id = d.message_id
"""
# What is already known of the candidate messages: tombstones, stored versions, rows.
KNOWN = """
select 'deleted' as kind, message_id, null::text as source, null::timestamptz as version_at, null::text as event_id,
       null::integer as chunk_index, null::integer as chunk_count
from message_embedding_deletions where message_id = any($1::text[])
union all
select 'version', message_id, source, version_at, event_id, null, null
from message_embedding_sources where message_id = any($1::text[])
union all
select 'row', message_id, source, null, null, chunk_index, chunk_count
from message_embeddings where message_id = any($1::text[])
"""
CLEAR = """
delete from message_embeddings e using unnest($1::text[], $2::text[]) as u(m, s)
where e.message_id = u.m and e.source = u.s
"""
MOVE = """
update message_embeddings e set chunk_index = u.n, chunk_count = coalesce(u.c, e.chunk_count)
from unnest($1::text[], $2::integer[], $3::integer[], $4::integer[]) as u(m, o, n, c)
where e.message_id = u.m and e.chunk_index = u.o
"""
INSERT = """
insert into message_embeddings (message_id, chunk_index, chat_key, source, chunk_text, start_token, end_token,
                                chunk_count, embedding, model)
select * from unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::integer[],
                     $8::integer[], $9::vector[], $10::text[])
"""
RECOUNT = """
update message_embeddings e set chunk_count = u.c
from unnest($1::text[], $2::integer[], $3::integer[]) as u(m, i, c)
where e.message_id = u.m and e.chunk_index = u.i
"""
SAVE_VERSIONS = """
insert into message_embedding_sources as s (message_id, source, chat_key, version_at, event_id, text_sha256,
                                            token_count, chunk_count, truncated, model)
select * from unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::integer[],
                     $8::integer[], $9::boolean[], $10::text[])
on conflict (message_id, source) do update set
    chat_key = excluded.chat_key, version_at = excluded.version_at, event_id = excluded.event_id,
    text_sha256 = excluded.text_sha256, token_count = excluded.token_count, chunk_count = excluded.chunk_count,
    truncated = excluded.truncated, model = excluded.model, updated_at = now()
"""


class EmbeddingsWriter:
    async def write(self, conn: asyncpg.Connection, items: Sequence[Item[EmbeddingEvent]]) -> None:
        await self.write_ops(conn, fold(items))

    async def write_ops(self, conn: asyncpg.Connection, ops: Ops) -> None:
        if ops.removals:
            gone = list(ops.removals.values())
            await conn.execute(REMOVE, [e.message_id for e in gone], [e.chat_key for e in gone],
                               [e.deleted_at for e in gone])  # fmt: skip
        if not ops.replacements:
            return
        candidates = sorted({message_id for message_id, _ in ops.replacements})
        deleted: set[str] = set()
        versions: dict[tuple[str, str], tuple[object, str]] = {}
        stored: list[StoredRow] = []
        for r in await conn.fetch(KNOWN, candidates):
            if r["kind"] == "deleted":
                deleted.add(r["message_id"])
            elif r["kind"] == "version":
                versions[(r["message_id"], r["source"])] = (r["version_at"], r["event_id"])
            else:
                stored.append(StoredRow(r["message_id"], r["source"], r["chunk_index"], r["chunk_count"]))
        winners = [e for e in ops.replacements.values() if e.message_id not in deleted and _is_news(e, versions)]
        if not winners:
            return
        plan = layout(stored, winners)
        await conn.execute(CLEAR, [m for m, _ in plan.clear], [s for _, s in plan.clear])
        if plan.park:
            await conn.execute(MOVE, *_columns(plan.park), [None] * len(plan.park))
        if plan.insert:
            rows = plan.insert
            await conn.execute(
                INSERT, [r.event.message_id for r in rows], [r.chunk_index for r in rows],
                [r.event.chat_key for r in rows], [r.event.source for r in rows], [r.chunk.text for r in rows],
                [r.chunk.start_token for r in rows], [r.chunk.end_token for r in rows],
                [r.chunk_count for r in rows], [r.chunk.embedding for r in rows], [r.event.model for r in rows],
            )  # fmt: skip
        if plan.place:
            await conn.execute(MOVE, *_columns(plan.place))
        if plan.recount:
            await conn.execute(RECOUNT, *_columns(plan.recount))
        await conn.execute(
            SAVE_VERSIONS, [e.message_id for e in winners], [e.source for e in winners], [e.chat_key for e in winners],
            [e.version_at for e in winners], [e.event_id for e in winners], [e.text_sha256 for e in winners],
            [e.token_count for e in winners], [len(e.chunks) for e in winners], [e.truncated for e in winners],
            [e.model for e in winners],
        )  # fmt: skip


def _is_news(event: ChunksReplaced, versions: dict[tuple[str, str], tuple[object, str]]) -> bool:
    """Newer than the stored version, or as new and a different event (a tie: the later record wins)."""
    known = versions.get((event.message_id, event.source))
    if known is None:
        return True
    version_at, event_id = known
    return event.version_at > version_at or (event.version_at == version_at and event.event_id != event_id)  # type: ignore[operator]


def _columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    return [list(column) for column in zip(*rows, strict=True)]
