"""Reading the erasure ledger (the ``erasures`` table the erasures projector writes) for the
readers that must leave an erased subject's past alone: each projector's batch, each stage's
input, `msgmem replay`, `msgmem projections rebuild`; with it, the retention cut-offs
(``retention_cutoffs``, written by the same projector from wa.retention), which those readers
apply the same way (``Ledger.screen``).

Projectors read it per batch inside their transaction, under ``LEDGER_LOCK`` taken shared (the
erasures projector takes it exclusive), so no batch writes rows of a subject whose erasure
committed meanwhile. Stage workers read it once per batch, one-off tools before each record
(``LedgerCache``; ``streams.common.erasure_guard``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType

import asyncpg

from contracts.erasure import Ledger, chat_hash
from contracts.errors import describe_error
from contracts.settings import Settings
from runtime.errors import StoreUnavailable
from runtime.pg_unavailable import UNAVAILABLE

#: pg advisory lock key shared by the erasures projector (exclusive) and every other projector (shared).
LEDGER_LOCK = 0x6D6D6572617365  # "mmerase"
_READ = "select subject_hash, chat_hashes, requested_at from erasures"
_CUTOFFS = "select chat_hash, messages_before, texts_before from retention_cutoffs"
_TABLES = "select to_regclass('erasures') is not null, to_regclass('retention_cutoffs') is not null"
_MARK = "select count(*), max(completed_at) from erasures"
_CUTOFFS_MARK = "select count(*), max(updated_at) from retention_cutoffs"


async def read_ledger(conn: asyncpg.Connection, chats: Iterable[str] | None = None) -> Ledger:
    """The ledger as committed now, with the retention cut-offs (``contracts.retention``): all
    of them, or those of ``chats`` only (a projector's batch: there is a cut-off per chat, the
    erasures are few). Empty on a database without migration 0013, without cut-offs before
    0016 (asked first, not caught: an error would abort the caller's transaction)."""
    erasures, cutoffs = await conn.fetchrow(_TABLES)
    if not erasures:
        return Ledger()
    rows = await conn.fetch(_READ)
    if not cutoffs:
        cuts = []
    elif chats is None:
        cuts = await conn.fetch(_CUTOFFS)
    else:
        hashes = sorted({chat_hash(c) for c in chats if c.count(":") >= 2})
        cuts = await conn.fetch(_CUTOFFS + " where chat_hash = any($1::text[])", hashes) if hashes else []
    return Ledger.of(((r["subject_hash"], r["chat_hashes"], r["requested_at"]) for r in rows),
                     ((c["chat_hash"], c["messages_before"], c["texts_before"]) for c in cuts))  # fmt: skip


async def guarded_read(conn: asyncpg.Connection, chats: Iterable[str] | None = None) -> Ledger:
    """For a projector's batch transaction: the shared lock, then the ledger (with the cut-offs
    of ``chats``, the chats the batch is about: ``chats_of``)."""
    await conn.execute("select pg_advisory_xact_lock_shared($1)", LEDGER_LOCK)
    return await read_ledger(conn, chats)


def chats_of(events: Iterable[object]) -> set[str]:
    """Every chat key the ledger may be asked about for ``events``: an envelope's ``chat_key``,
    a dead letter's input ``key``."""
    out: set[str] = set()
    for event in events:
        chat = getattr(event, "chat_key", None)
        if isinstance(chat, str):
            out.add(chat)
        key = getattr(event, "key", None)
        if isinstance(key, bytes):
            out.add(key.decode("utf-8", "replace"))
    return out


class LedgerCache:
    """A stage's view of the ledger: on each call, one trivial query (how many erasures, the
    latest) on a connection kept open, and the whole ledger read again only when that changed.
    So an erasure committed before a stage takes a batch is always seen (no window of
    staleness), at the cost of one round trip per batch. Each round trip is bounded by
    ``TIMEOUT`` (a stopped server must not hang the stage); any failure to read is a
    ``StoreUnavailable`` and the next call connects again."""

    TIMEOUT = 10.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ledger = Ledger()
        self._seen: tuple[object, ...] | None = None
        self._conn: asyncpg.Connection | None = None
        self._table = False
        self._cutoffs = False
        self._lock = asyncio.Lock()

    async def current(self) -> Ledger:
        async with self._lock:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._settings.database_url, timeout=self.TIMEOUT,
                                                       statement_cache_size=self._settings.statement_cache_size)  # fmt: skip
                if not self._cutoffs:  # asked until migrations 0013 and 0016 are there, then never again
                    self._table, self._cutoffs = await self._conn.fetchrow(_TABLES, timeout=self.TIMEOUT)
                    if not self._table:
                        return self._ledger
                row = await self._conn.fetchrow(_MARK, timeout=self.TIMEOUT)
                cuts = await self._conn.fetchrow(_CUTOFFS_MARK, timeout=self.TIMEOUT) if self._cutoffs else (0, None)
                mark = (row[0], row[1], cuts[0], cuts[1])
                if mark != self._seen:
                    self._ledger = await asyncio.wait_for(read_ledger(self._conn), self.TIMEOUT)
                    self._seen = mark
                return self._ledger
            except UNAVAILABLE as exc:
                self._drop()
                raise StoreUnavailable(f"erasure ledger unreadable: {describe_error(exc)}") from exc

    def _drop(self) -> None:
        """Forget a connection that failed (terminated, not closed: it may not answer a goodbye)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.terminate()

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close(timeout=5)

    async def __aenter__(self) -> "LedgerCache":
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()
