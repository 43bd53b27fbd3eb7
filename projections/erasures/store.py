"""Applies ErasureRequested events (and the retention cut-offs of wa.retention, through
``projections.retention.store``) inside the transaction the projector opens per batch: the
subject's rows go, its media objects go (objects no other chat uses), and the ``erasures`` row
that says so is written with the offsets, so a crash re-applies the whole erasure (idempotent:
deleting what is gone removes nothing, deleting a missing object is a no-op)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import orjson

from contracts.erasure import ErasureRequested, subject_hash
from contracts.retention import MessagesExpired, TextsCleared
from contracts.settings import Settings
from projections.erasures import sql
from projections.erasures.logic import Removed, chats_of, exclusive
from projections.items import Item
from projections.retention import store as retention
from runtime.erasure_ledger import LEDGER_LOCK
from runtime.media_storage import MediaStore, build_store

PROJECTION = "erasures"

PrivacyEvent = ErasureRequested | MessagesExpired | TextsCleared


class ErasuresWriter:
    hides_erased = False  # it writes the ledger the other projections read

    def __init__(self, settings: Settings, store: MediaStore | None = None) -> None:
        self._settings = settings
        self._store = store
        self._opening = asyncio.Lock()

    async def _media(self) -> MediaStore:
        async with self._opening:
            if self._store is None:
                self._store = await build_store(self._settings, create_bucket=False)
            return self._store

    async def write(self, conn: asyncpg.Connection, items: Sequence[Item[PrivacyEvent]]) -> None:
        # Exclusive against every other projector's batch (they take it shared and read the
        # ledger under it): none can commit rows of the subject read before this commits.
        await conn.execute("select pg_advisory_xact_lock($1)", LEDGER_LOCK)
        for item in items:
            event = item.event
            if not isinstance(event, ErasureRequested):  # a retention cut-off (wa.retention)
                await retention.apply(conn, event, self._media, self._settings.media_storage)
                continue
            removed, chats = await self.apply(conn, event)
            await conn.execute(
                sql.INSERT_ERASURE, event.erasure_id, event.subject_kind, event.subject_hash, event.requested_at,
                event.requested_by, len(chats), orjson.dumps(removed.to_json()).decode(), item.partition, item.offset,
                [subject_hash("chat", chat) for chat in chats],
            )  # fmt: skip

    async def apply(self, conn: asyncpg.Connection, event: ErasureRequested) -> tuple[Removed, list[str]]:
        """Remove everything about the subject; (what was removed, the chats it had)."""
        candidates = [(r["chat_key"], r["contact_phone"]) for r in await conn.fetch(sql.CANDIDATE_CHATS)]
        chats = chats_of(event.subject_hash, candidates)
        removed = Removed(tables={table: 0 for table, _, _ in sql.DELETES})
        if not chats:
            return removed, []
        theirs = await conn.fetch(sql.THEIR_MEDIA, chats)
        paths = [r["path"] for r in theirs if r["path"]]
        hashes = [r["sha256"] for r in theirs if r["sha256"]]
        others = await conn.fetch(sql.OTHERS_MEDIA, chats, hashes, paths)
        objects = exclusive(paths, (r["path"] for r in others))
        args = {
            "chats": chats,
            "messages": [r["id"] for r in await conn.fetch(sql.MESSAGE_IDS, chats)],
            "hashes": exclusive(hashes, (r["sha256"] for r in others)),
        }
        for table, statement, arg in sql.DELETES:
            removed.tables[table] = _count(await conn.execute(statement, args[arg]))
        if objects:
            await (await self._media()).delete(objects)
        removed.storage[self._settings.media_storage] = len(objects)
        return removed, chats


def _count(status: str) -> int:
    """The row count of a ``DELETE n`` command tag."""
    return int(status.rsplit(" ", 1)[-1])
