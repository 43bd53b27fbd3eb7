"""Retention sweep: delete stored media past ``expires_at`` and append a ``MediaExpired`` per row.

Run by `msgmem media sweep` (:func:`sweep_once`) and periodically by the media worker. The sweep
reads chat_media to find what expired but writes no table: the media projector makes the rows
'expired' from the events, as it makes every other change to them (the log is the only writer).

Objects are content-addressed, so one object may back several rows (the same file sent twice, a
forward): an object is deleted only when no row still in retention points at it; every expired
row gets its event either way (``object_deleted`` says which). Each batch runs in one
transaction under an advisory lock, so concurrent sweepers (several media workers) take turns
instead of sweeping the same rows at once, and a batch's events are appended only after its
objects are gone: a crash in between deletes again next time (a no-op) and appends the same
events (same ids). Until the projector has applied them the rows still read 'stored', so a
sweep in that window appends an expiry again: the same event, which the projection's merge
absorbs. Within one run the rows do not change under the sweep, so batches page by
(expires_at, id).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from contracts.settings import Settings
from runtime.media_storage import MediaStore, build_store
from streams.common.outputs import KafkaOutputs, OutputWriter
from streams.media.logic import ExpiredRow, expired, output

_LOCK_KEY = 0x6D6D7377656570  # "mmsweep"

_EXPIRED = """
select c.id as media_id, c.message_id, c.chat_key, c.kind, c.size_bytes, c.sha256, c.bucket, c.path, c.stored_at,
       c.expires_at, (select m.received_at from chat_messages m where m.id = c.message_id) as received_at
from chat_media c
where c.status = 'stored' and c.bucket = $1 and c.expires_at <= $2 and c.path is not null and c.stored_at is not null
  and ($3::timestamptz is null or (c.expires_at, c.id) > ($3, $4::text))
order by c.expires_at, c.id
limit $5
"""
_STILL_USED = """
select distinct path from chat_media
where bucket = $1 and path = any($2::text[]) and status = 'stored' and (expires_at is null or expires_at > $3)
"""


@dataclass(frozen=True)
class SweepReport:
    rows_expired: int = 0  # MediaExpired events appended
    objects_deleted: int = 0
    objects_kept: int = 0  # still used by a row in retention


async def sweep_expired(
    conn: asyncpg.Connection, store: MediaStore, outputs: OutputWriter, *, now: datetime | None = None,
    batch_size: int = 500,
) -> SweepReport:  # fmt: skip
    """Sweep every expired row of ``store``'s bucket, a batch per transaction; return what was done."""
    now = now or datetime.now(UTC)
    rows = deleted = kept = 0
    after: tuple[datetime | None, str | None] = (None, None)
    while True:
        async with conn.transaction():
            if not await conn.fetchval("select pg_try_advisory_xact_lock($1)", _LOCK_KEY):
                break  # another sweeper is at it
            batch = [ExpiredRow(**dict(r)) for r in await conn.fetch(_EXPIRED, store.bucket, now, *after, batch_size)]
            if not batch:
                break
            paths = sorted({r.path for r in batch})
            used = {r["path"] for r in await conn.fetch(_STILL_USED, store.bucket, paths, now)}
            doomed = [p for p in paths if p not in used]
            events = [output(expired(r, object_deleted=r.path not in used, now=now)) for r in batch]
            await store.delete(doomed)
            await outputs.write(events)
        rows, deleted, kept = rows + len(batch), deleted + len(doomed), kept + len(used)
        if len(batch) < batch_size:
            break
        after = (batch[-1].expires_at, batch[-1].media_id)
    return SweepReport(rows, deleted, kept)


async def sweep_once(settings: Settings) -> SweepReport:
    """One sweep of the configured store's bucket with its own connection and producer: for the
    CLI and the worker's timer. The producer starts first, so an unreachable broker deletes nothing."""
    async with AsyncExitStack() as resources:
        store = await build_store(settings)
        resources.push_async_callback(store.aclose)
        outputs = await KafkaOutputs.start(settings)
        resources.push_async_callback(outputs.stop)
        conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
        resources.push_async_callback(conn.close)
        report = await sweep_expired(conn, store, outputs)
    return report
