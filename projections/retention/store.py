"""Applies wa.retention events inside the erasures projector's batch transaction.

Why the erasures projector and not each projector for its own tables: a cut-off removes rows
of four projections (messages, media, embeddings, dead letters) and files, and every other
projector must stop writing what it removes at the very moment it commits. The erasures
projector already holds the ledger lock exclusively (``runtime.erasure_ledger.LEDGER_LOCK``)
while the others read the ledger (now with the cut-offs) under it shared, so a batch of
another projector either commits before the cut-off (and its rows are removed here) or reads
the cut-off and leaves them out: one transaction, no window, and no ordering needed between
wa.retention and the topics the rows came from. A rebuild reads the same cut-offs and leaves
out the same events (``contracts.erasure.Ledger.screen``).

Idempotent: a cut-off only moves forward (``greatest``), deleting what is gone removes
nothing, clearing what is clear changes nothing, deleting a missing object is a no-op; a crash
applies the batch again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg

from contracts.erasure import chat_hash
from contracts.retention import MessagesExpired, TextsCleared
from projections.retention import sql
from projections.retention.logic import Applied, MediaRef, doomed_objects, doomed_results
from runtime.media_storage import MediaStore

log = logging.getLogger(__name__)


async def apply(conn: asyncpg.Connection, event: MessagesExpired | TextsCleared,
                media: Callable[[], Awaitable[MediaStore]], storage: str) -> Applied:  # fmt: skip
    """Apply one cut-off to every table (and to storage) and record it in ``retention_cutoffs``."""
    ids = [r["id"] for r in await conn.fetch(sql.MESSAGE_IDS, event.chat_key, event.before)]
    applied = Applied()
    if isinstance(event, MessagesExpired):
        await _expire(conn, event, ids, applied, media, storage)
        await conn.execute(sql.SAVE_CUTOFF, chat_hash(event.chat_key), event.before, None)
    else:
        await _clear(conn, ids, applied)
        await conn.execute(sql.SAVE_CUTOFF, chat_hash(event.chat_key), None, event.before)
    log.info("retention %s applied: %s", event.type, applied.tables or "nothing left to remove")
    return applied


async def _media_refs(conn: asyncpg.Connection, ids: list[str]) -> tuple[list[MediaRef], list[MediaRef]]:
    theirs: list[MediaRef] = [(r["path"], r["sha256"], r["status"]) for r in await conn.fetch(sql.THEIR_MEDIA, ids)]
    paths = sorted({p for p, _, _ in theirs if p})
    hashes = sorted({h for _, h, _ in theirs if h})
    others: list[MediaRef] = []
    if paths or hashes:
        others = [(r["path"], r["sha256"], r["status"]) for r in await conn.fetch(sql.OTHERS_MEDIA, ids, hashes, paths)]
    return theirs, others


async def _expire(conn: asyncpg.Connection, event: MessagesExpired, ids: list[str], applied: Applied,
                  media: Callable[[], Awaitable[MediaStore]], storage: str) -> None:  # fmt: skip
    applied.add("dead_letters", _count(await conn.execute(sql.EXPIRE_LETTERS, event.chat_key, event.before)))
    if not ids:
        return
    theirs, others = await _media_refs(conn, ids)
    objects = doomed_objects(theirs, others)
    args = {"messages": ids, "hashes": doomed_results(theirs, others)}
    for table, statement, arg in sql.EXPIRE:
        applied.add(table, _count(await conn.execute(statement, args[arg])))
    if objects:
        await (await media()).delete(objects)
        applied.storage[storage] = len(objects)


async def _clear(conn: asyncpg.Connection, ids: list[str], applied: Applied) -> None:
    if not ids:
        return
    theirs, others = await _media_refs(conn, ids)
    applied.add("chat_media", _count(await conn.execute(sql.CLEAR_MEDIA, ids)))
    applied.add("chat_messages", _count(await conn.execute(sql.CLEAR_MESSAGES, ids)))
    applied.add("message_embeddings", _count(await conn.execute(sql.CLEAR_CHUNKS, ids, sql.DERIVED_SOURCES)))
    applied.add("message_embedding_sources", _count(await conn.execute(sql.CLEAR_SOURCES, ids, sql.DERIVED_SOURCES)))
    await conn.execute(sql.RECOUNT, ids)
    applied.add("enrichment_cache", _count(await conn.execute(sql.CLEAR_CACHE, doomed_results(theirs, others))))


def _count(status: str) -> int:
    """The row count of a ``DELETE n`` / ``UPDATE n`` command tag."""
    return int(status.rsplit(" ", 1)[-1])
