"""Composition root of the erasures projector: ``python -m projections.erasures``.

Reads wa.erasures in the consumer group KAFKA_GROUP_PREFIX + ``erasures-projector`` and, per
``ErasureRequested``, removes every row about the subject from every projected table, its media
objects from MEDIA_STORAGE (local or Supabase) when no other chat uses them, and the AI results
cached only for those files; then writes the ``erasures`` row (counts, no personal data) with its
offsets under the projection ``erasures``. `msgmem erase` and POST /admin/erasures wait for
that row. One projector does it, not each projector for its own tables, so an erasure is one
transaction and one completion row; the other projectors and the stages only read the ledger
(``erasures``) to leave the subject's past alone when they see it again.
"""

from __future__ import annotations

import asyncpg

from contracts import erasure, processes
from contracts.erasure import ErasureRequested
from contracts.settings import Settings
from projections.consumer import Projection
from projections.erasures.store import ErasuresWriter
from projections.errors import ProjectionError


async def check_schema(conn: asyncpg.Connection, _settings: Settings) -> None:
    """Fail at start-up, not per batch, when the table is missing."""
    if await conn.fetchval("select to_regclass('erasures')") is None:
        raise ProjectionError("migration 0013 is not applied (no erasures): run `msgmem migrate`")


PROJECTOR: Projection[ErasureRequested] = Projection(
    processes.ERASURES_PROJECTOR, erasure.decode, ErasuresWriter, check_schema
)
