"""Applies a projection's topic to its shadow tables, from where they stand to given offsets.

Reads with a group-less consumer (``assign`` + ``seek``): the live projector's group, its
committed offsets and its partitions are never touched. Two tasks form a pipeline: the reader
fetches, decodes and prepares (folds) batch n+1 while the writer has Postgres write batch n,
so on two cores Python and Postgres work at the same time. The reader yields to the event
loop every few hundred records, so the writer sends its next statement as soon as Postgres
answers the previous one.

Batches are much larger than the live projector's (default 20,000 events): the fold merges a
message's copies, statuses and reactions in memory, so a bigger batch means fewer rows written
and fewer statements. Each batch is one transaction (a savepoint when the caller holds a
transaction open, as the swap does).

Poison follows the live projector's rules (``projections.errors.is_poison``): undecodable
records are skipped, and a batch Postgres refuses for its data is split in halves until the
refused events are alone, and those are skipped. They are counted, not dead-lettered again:
the live projector put them on wa.deadletter when it met them, under the same ids.
A deadlock is retried: it needs two writers on one row, which only happens when several
workers (``projections.rebuild.workers``) load partitions that share a chat (events keyed by
something other than their chat). Unavailability is not retried: a rebuild that fails is run
again, from scratch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts.erasure import Ledger
from contracts.settings import Settings
from projections.errors import is_poison
from runtime.erasure_ledger import read_ledger
from projections.items import Item, next_offsets, screened
from projections.rebuild.ddl import qi
from projections.rebuild.targets import RebuildError, RebuildTarget

YIELD_EVERY = 256  # records decoded between two turns of the event loop
SAMPLE = 10  # coordinates kept per kind of skipped event
DEADLOCK_ATTEMPTS = 5
MAINTENANCE_WORK_MEM = "256MB"  # index builds sort in memory


class Advance(Protocol):
    def advance(self, n: int = 1) -> None: ...


async def connect(settings: Settings, shadow: str | None = None, target: RebuildTarget | None = None
                  ) -> asyncpg.Connection:  # fmt: skip
    """A connection for the rebuild; with ``shadow``, that schema comes first on its search_path,
    so the projection's unqualified SQL writes the shadow tables; with ``target``, prepared as
    its live projector prepares its own (``RebuildTarget.init``).

    No statement or idle timeouts: an index build takes minutes on a big table, and the swap's
    transaction waits on Kafka reads between statements.
    """
    conn = await asyncpg.connect(
        settings.database_url, statement_cache_size=settings.statement_cache_size,
        server_settings={"statement_timeout": "0", "idle_in_transaction_session_timeout": "0",
                         "maintenance_work_mem": MAINTENANCE_WORK_MEM},
    )  # fmt: skip
    if shadow is not None:
        await conn.execute("select set_config('search_path', $1 || ', ' || current_setting('search_path'), false)",
                           qi(shadow))  # fmt: skip
    if target is not None and target.init is not None:
        await target.init(conn)
    return conn


@dataclass
class LoadStats:
    records: int = 0
    applied: int = 0
    batches: int = 0
    undecodable: int = 0
    refused: int = 0
    erased: int = 0  # records of an erased subject, received before its erasure
    skipped_at: list[str] = field(default_factory=list)  # "topic[partition]@offset (kind)", the first few
    reader_seconds: float = 0.0  # fetching, decoding and preparing (its own turns of the event loop only)
    writer_seconds: float = 0.0  # from sending a batch to its commit (encoding, and waiting for Postgres)

    def skip(self, item: tuple[str, int, int], kind: str) -> None:
        if kind == "undecodable":
            self.undecodable += 1
        else:
            self.refused += 1
        if len(self.skipped_at) < SAMPLE:
            self.skipped_at.append(f"{item[0]}[{item[1]}]@{item[2]} ({kind})")


@dataclass
class _Batch:
    items: list[Item[Any]]
    prepared: Any  # None: preparing raised a poison error, the writer splits the batch
    ends: dict[TopicPartition, int]
    records: int


class ShadowLoader:
    def __init__(self, target: RebuildTarget, conn: asyncpg.Connection, consumer: AIOKafkaConsumer,
                 positions: dict[TopicPartition, int], *, batch_size: int) -> None:  # fmt: skip
        self.target = target
        self.positions = dict(positions)  # next offset to apply, per partition
        self.stats = LoadStats()
        self.batch_size = batch_size
        self._conn = conn
        self._consumer = consumer
        self._ledger: Ledger | None = None

    async def run_to(self, goal: dict[TopicPartition, int], bar: Advance | None = None) -> int:
        """Apply every record below ``goal`` (per partition) not applied yet; return how many were read."""
        wanted = {tp for tp, end in goal.items() if end > self.positions.get(tp, 0)}
        if not wanted:
            return 0
        ends = await self._consumer.end_offsets(list(wanted))
        short = {tp: ends[tp] for tp in wanted if ends[tp] < goal[tp]}
        if short:  # e.g. the topic was deleted and created again: waiting would never end
            raise RebuildError("the log ends before the offsets to reach: "
                               + ", ".join(f"{tp.topic}[{tp.partition}] ends at {o}, not {goal[tp]}"
                                           for tp, o in short.items()))  # fmt: skip
        if self._ledger is None:  # read once: erasures applied while the rebuild runs are the live projector's
            self._ledger = await read_ledger(self._conn)
        before = self.stats.records
        queue: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=1)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(wanted, goal, queue))
            tasks.create_task(self._write(queue, bar))
        return self.stats.records - before

    async def _read(self, wanted: set[TopicPartition], goal: dict[TopicPartition, int],
                    queue: asyncio.Queue[_Batch | None]) -> None:  # fmt: skip
        for tp in wanted:
            self._consumer.seek(tp, self.positions.get(tp, 0))
        while wanted:
            started = time.perf_counter()
            batch = await self._consumer.getmany(*wanted, timeout_ms=1000, max_records=self.batch_size)
            records = [r for tp, rs in batch.items() for r in rs if r.offset < goal[tp]]
            for tp in list(wanted):
                if await self._consumer.position(tp) >= goal[tp]:
                    wanted.discard(tp)
            self.stats.reader_seconds += time.perf_counter() - started
            if records:
                await queue.put(await self._prepare(records))
        await queue.put(None)  # not on failure: the task group then cancels the writer

    async def _prepare(self, records: Sequence[ConsumerRecord]) -> _Batch:
        items: list[Item[Any]] = []
        decode = self.target.decode
        started = time.perf_counter()
        for n, r in enumerate(records):
            try:
                if r.value is None:
                    raise ValueError("record without a value")
                item = Item(decode(r.value), r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers))
                if self._ledger is None or not self._ledger.active:
                    items.append(item)
                    continue
                # as the live projector: hidden (erased, expired), stripped (text cleared), or
                # kept for its chat alone (expired, messages projection)
                kept = screened([item], self._ledger, keep_expired=self.target.keeps_expired_chats)
                if not kept or kept[0].expired:
                    self.stats.erased += 1
                items.extend(kept)
            except Exception:  # noqa: BLE001 - EventDecodeError or an upcaster's bug: poison either way, as live
                self.stats.skip((r.topic, r.partition, r.offset), "undecodable")
            if n % YIELD_EVERY == YIELD_EVERY - 1:
                self.stats.reader_seconds += time.perf_counter() - started
                await asyncio.sleep(0)
                started = time.perf_counter()
        ends = next_offsets((r.topic, r.partition, r.offset) for r in records)
        batch = _Batch(items, self._prepared(items), ends, len(records))
        self.stats.reader_seconds += time.perf_counter() - started
        return batch

    def _prepared(self, items: Sequence[Item[Any]]) -> Any:
        try:
            return self.target.prepare(items)
        except Exception as exc:
            if is_poison(exc):
                return None
            raise

    async def _write(self, queue: asyncio.Queue[_Batch | None], bar: Advance | None) -> None:
        while (batch := await queue.get()) is not None:
            started = time.perf_counter()
            if batch.prepared is None:
                await self._settle(batch.items)
            else:
                try:
                    await self._transaction(batch.prepared)
                    self.stats.applied += len(batch.items)
                except Exception as exc:
                    if not is_poison(exc):
                        raise
                    await self._settle(batch.items)
            self.stats.writer_seconds += time.perf_counter() - started
            self.positions.update(batch.ends)
            self.stats.records += batch.records
            self.stats.batches += 1
            if bar is not None:
                bar.advance(batch.records)

    async def _settle(self, items: Sequence[Item[Any]]) -> None:
        """Apply what Postgres accepts, in halves and in log order; skip single events it refuses."""
        if not items:
            return
        try:
            await self._transaction(self.target.prepare(items))
            self.stats.applied += len(items)
        except Exception as exc:
            if not is_poison(exc):
                raise
            if len(items) == 1:
                self.stats.skip((items[0].topic, items[0].partition, items[0].offset), "refused")
                return
            middle = len(items) // 2
            await self._settle(items[:middle])
            await self._settle(items[middle:])

    async def _transaction(self, prepared: Any) -> None:
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                async with self._conn.transaction():
                    await self.target.write(self._conn, prepared)
                return
            except asyncpg.DeadlockDetectedError:
                if attempt == DEADLOCK_ATTEMPTS:
                    raise
                await asyncio.sleep(0.05 * attempt)
