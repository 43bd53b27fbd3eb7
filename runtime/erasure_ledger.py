"""Reading the erasure ledger (the ``erasures`` table the erasures projector writes) for the
readers that must leave an erased subject's past alone: each projector's batch, each stage's
input, `msgmem replay`, `msgmem projections rebuild`.

Projectors read it per batch inside their transaction, under ``LEDGER_LOCK`` taken shared (the
erasures projector takes it exclusive), so no batch writes rows of a subject whose erasure
committed meanwhile. Stages keep a copy at most ``STAGE_LEDGER_MAX_AGE`` seconds old: a record
that slips through in that window only costs work, its rows are still refused by the projectors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType

import asyncpg

from contracts.erasure import Ledger
from contracts.settings import Settings

log = logging.getLogger(__name__)

#: pg advisory lock key shared by the erasures projector (exclusive) and every other projector (shared).
LEDGER_LOCK = 0x6D6D6572617365  # "mmerase"
STAGE_LEDGER_MAX_AGE = 5.0
_READ = "select subject_hash, chat_hashes, requested_at from erasures"


async def read_ledger(conn: asyncpg.Connection) -> Ledger:
    """The ledger as committed now; empty on a database without migration 0012."""
    try:
        rows = await conn.fetch(_READ)
    except asyncpg.UndefinedTableError:
        return Ledger()
    return Ledger.of((r["subject_hash"], r["chat_hashes"], r["requested_at"]) for r in rows)


async def guarded_read(conn: asyncpg.Connection) -> Ledger:
    """For a projector's batch transaction: the shared lock, then the ledger."""
    await conn.execute("select pg_advisory_xact_lock_shared($1)", LEDGER_LOCK)
    return await read_ledger(conn)


class LedgerCache:
    """A stage's copy of the ledger, read again when older than ``max_age`` seconds."""

    def __init__(self, settings: Settings, max_age: float = STAGE_LEDGER_MAX_AGE) -> None:
        self._settings = settings
        self._max_age = max_age
        self._ledger = Ledger()
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def current(self) -> Ledger:
        async with self._lock:
            if time.monotonic() - self._read_at >= self._max_age:
                conn = await asyncpg.connect(self._settings.database_url,
                                             statement_cache_size=self._settings.statement_cache_size)  # fmt: skip
                try:
                    self._ledger = await read_ledger(conn)
                finally:
                    await conn.close()
                self._read_at = time.monotonic()
            return self._ledger

    async def __aenter__(self) -> "LedgerCache":
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None
