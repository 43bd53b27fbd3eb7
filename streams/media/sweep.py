"""Retention sweep: delete stored media past ``expires_at`` and mark their chat_media rows expired.

Run by `msgmem media sweep` (:func:`sweep_once`) and periodically by the media worker. Objects are
content-addressed, so one object may back several rows (the same file sent twice, a
forward): an object is deleted only when no row still in retention points at it; the
expired rows are marked either way. Each batch runs in one transaction under an advisory
lock, so concurrent sweepers (several media workers) never do the same work, and the rows
are marked only after their objects are gone: a crash in between repeats the (idempotent)
deletion next time instead of leaving orphans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from contracts.settings import Settings
from runtime.media_storage import MediaStore, build_store

_LOCK_KEY = 0x6D6D7377656570  # "mmsweep"

_EXPIRED = """
select id, path from chat_media
where status = 'stored' and bucket = $1 and expires_at <= $2 and path is not null
order by expires_at
limit $3
for update skip locked
"""
_STILL_USED = """
select distinct path from chat_media
where bucket = $1 and path = any($2::text[]) and status = 'stored' and (expires_at is null or expires_at > $3)
"""
_MARK = "update chat_media set status = 'expired', updated_at = now() where id = any($1::text[])"


@dataclass(frozen=True)
class SweepReport:
    rows_expired: int = 0
    objects_deleted: int = 0
    objects_kept: int = 0  # still used by a row in retention


async def sweep_expired(
    conn: asyncpg.Connection, store: MediaStore, *, now: datetime | None = None, batch_size: int = 500
) -> SweepReport:
    """Sweep every expired row of ``store``'s bucket, a batch per transaction; return what was done."""
    now = now or datetime.now(UTC)
    rows = deleted = kept = 0
    while True:
        async with conn.transaction():
            if not await conn.fetchval("select pg_try_advisory_xact_lock($1)", _LOCK_KEY):
                break  # another sweeper is at it
            expired = await conn.fetch(_EXPIRED, store.bucket, now, batch_size)
            if not expired:
                break
            paths = sorted({r["path"] for r in expired})
            used = {r["path"] for r in await conn.fetch(_STILL_USED, store.bucket, paths, now)}
            doomed = [p for p in paths if p not in used]
            await store.delete(doomed)
            await conn.execute(_MARK, [r["id"] for r in expired])
        rows, deleted, kept = rows + len(expired), deleted + len(doomed), kept + len(used)
        if len(expired) < batch_size:
            break
    return SweepReport(rows, deleted, kept)


async def sweep_once(settings: Settings) -> SweepReport:
    """One sweep of the configured store's bucket with its own connection: for the CLI and the worker's timer."""
    store = await build_store(settings)
    try:
        conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
        try:
            return await sweep_expired(conn, store)
        finally:
            await conn.close()
    finally:
        await store.aclose()
