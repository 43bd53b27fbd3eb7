"""The Postgres side every projection shares: one transaction per batch holding the rows and
the next offsets (``projection_offsets``), and one writer at a time per partition.

A rebalance, a stuck process that lost its partitions or a restart can hand the same
records to two appliers. Each transaction therefore takes a transaction-scoped advisory
lock per (projection, topic, partition) before reading the stored offsets, and skips the
records below them: whoever commits second sees the first one's offsets and applies
nothing twice. Stored offsets only move forward (``greatest``). And a batch checks that the
stored offsets are where its projector left them: commits Postgres acknowledged and then lost
(a crash with synchronous_commit off, a failover to a replica that lagged) are found before
anything is written past them, and applied again (``OffsetsBehind``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

import asyncpg
from aiokafka import TopicPartition

from projections.batch import Applied
from projections.errors import OffsetsBehind
from projections.metrics import ProjectorMetrics
from runtime.erasure_ledger import chats_of, guarded_read
from projections.items import Item, screened

E = TypeVar("E")

_LOCK = "select pg_advisory_xact_lock(hashtext($1), p) from unnest($2::int[]) as p"
_READ = """
select partition, next_offset from projection_offsets
where projection = $1 and topic = $2 and partition = any($3::int[])
"""
_SAVE = """
insert into projection_offsets as o (projection, topic, partition, next_offset)
select $1, $2, u.p, u.n from unnest($3::int[], $4::bigint[]) as u(p, n)
on conflict (projection, topic, partition) do update
set next_offset = greatest(o.next_offset, excluded.next_offset), updated_at = now()
"""


class RowWriter(Protocol[E]):
    """A projection's own SQL: writes the rows of ``items`` inside the caller's transaction."""

    async def write(self, conn: asyncpg.Connection, items: Sequence[Item[E]]) -> None: ...


class PostgresProjectionStore(Generic[E]):
    def __init__(self, pool: asyncpg.Pool, projection: str, writer: RowWriter[E],
                 metrics: ProjectorMetrics | None = None) -> None:  # fmt: skip
        self._pool = pool
        self._projection = projection
        self._writer = writer
        self._metrics = metrics
        # Every projection leaves what the erasure ledger hides alone (and strips the derived text a
        # retention cut-off cleared), but the one writing the ledger.
        self._hides_erased = getattr(writer, "hides_erased", True)
        # The messages projection keeps what expired events say about their chat (``screened``).
        self._keeps_expired = getattr(writer, "keeps_expired_chats", False)

    async def load_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        async with self._pool.acquire() as conn:
            for topic, parts in _by_topic(partitions).items():
                for row in await conn.fetch(_READ, self._projection, topic, parts):
                    out[TopicPartition(topic, row["partition"])] = row["next_offset"]
        return out

    async def apply(
        self, items: Sequence[Item[E]], offsets: Mapping[TopicPartition, int],
        expected: Mapping[TopicPartition, int] | None = None,
    ) -> Applied:
        if not offsets:
            return Applied(0, 0)
        try:
            applied = await self._apply(items, offsets, expected)
        except BaseException:
            _discard_flags(self._writer)
            raise
        flagged = _take_flags(self._writer)
        if self._metrics is not None:
            for reason, count in flagged.items():
                self._metrics.flagged(reason, count)
        return applied

    async def _apply(
        self, items: Sequence[Item[E]], offsets: Mapping[TopicPartition, int],
        expected: Mapping[TopicPartition, int] | None,
    ) -> Applied:
        async with self._pool.acquire() as conn, conn.transaction():
            stored: dict[TopicPartition, int] = {}
            for topic, parts in _by_topic(offsets).items():
                await conn.execute(_LOCK, f"{self._projection}/{topic}", parts)
                for row in await conn.fetch(_READ, self._projection, topic, parts):
                    stored[TopicPartition(topic, row["partition"])] = row["next_offset"]
            behind = _behind(stored, expected or {}, offsets)
            if behind:
                raise OffsetsBehind(behind)
            fresh = [i for i in items if i.offset >= stored.get(i.tp, 0)] if stored else list(items)
            if fresh and self._hides_erased:
                ledger = await guarded_read(conn, chats_of(i.event for i in fresh))
                fresh = screened(fresh, ledger, keep_expired=self._keeps_expired) if ledger.active else fresh
            if fresh:
                await self._writer.write(conn, fresh)
            for topic, parts in _by_topic(offsets).items():
                nexts = [offsets[TopicPartition(topic, p)] for p in parts]
                await conn.execute(_SAVE, self._projection, topic, parts, nexts)
        return Applied(len(fresh), len(items) - len(fresh))


def _take_flags(writer: object) -> dict[str, int]:
    """Rows the writer flagged in the transaction that just committed (the messages projection's
    outbound compliance flags); other writers flag nothing."""
    take = getattr(writer, "take_flags", None)
    return take() if take is not None else {}


def _discard_flags(writer: object) -> None:
    discard = getattr(writer, "discard_flags", None)
    if discard is not None:
        discard()


def _behind(
    stored: Mapping[TopicPartition, int], expected: Mapping[TopicPartition, int], offsets: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Partitions of the batch whose stored offset is below what this projector committed. A
    partition with no stored offset is new (its first batch starts at the log's start)."""
    return {tp: stored[tp] for tp in offsets if tp in expected and tp in stored and stored[tp] < expected[tp]}


def _by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """Partitions grouped by topic, sorted, so concurrent lockers take locks in one order."""
    grouped: defaultdict[str, list[int]] = defaultdict(list)
    for tp in partitions:
        grouped[tp.topic].append(tp.partition)
    return {topic: sorted(parts) for topic, parts in sorted(grouped.items())}
