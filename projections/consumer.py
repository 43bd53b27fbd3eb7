"""The projector loop: a plain aiokafka group consumer reading batches with ``getmany``.

Not a faust agent: faust spends ~120 µs of its own per event, this loop a few µs, and the
batch is what makes the Postgres side fast (one transaction, a few bulk statements).

Postgres, not Kafka, holds the position (``projection_offsets``, written with the rows). On
every assignment the listener seeks each partition to its stored offset, or to the start of
the log when none is stored, so a crash (even SIGKILL between the database commit and the
Kafka commit) resumes exactly after the last committed batch. Offsets are also committed to
Kafka after each database commit (in the background), for lag tools only; they are never
read back.

A rebalance waits for the batch in flight (a lock); a batch fetched across a rebalance is
dropped and fetched again from the stored offsets; a batch keeps only the records of
partitions this process owns and has positioned, so no batch is applied for a partition it
has lost. If the batch is stuck retrying, revocation abandons it.

``running_projector`` and ``run_projector`` run one ``Projection`` (its declared process,
decoder, row writer and schema check): the composition every projector shares.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from contracts.errors import describe_error
from contracts.processes import Process
from contracts.settings import Settings
from runtime.kafka import make_consumer, make_producer
from runtime.logging_setup import process_settings
from projections.batch import BatchApplier, ProjectionStore, RetryPolicy
from projections.deadletter_port import KafkaDeadLetters
from projections.errors import BatchAbandoned, OffsetsBehind
from projections.metrics import MetricsServer, ProjectorMetrics
from projections.postgres import PostgresProjectionStore, RowWriter

log = logging.getLogger(__name__)

READY_LINE = "projector started"
_KAFKA_COMMIT_TIMEOUT = 5.0
E = TypeVar("E")


class Projector:
    def __init__(
        self, *, name: str, consumer: AIOKafkaConsumer, topics: Sequence[str], store: ProjectionStore[Any],
        applier: BatchApplier[Any], metrics: ProjectorMetrics, batch_size: int, batch_timeout_ms: int,
    ) -> None:  # fmt: skip
        self.name = name
        self.ready = asyncio.Event()
        self._consumer = consumer
        self._topics = list(topics)
        self._store = store
        self._applier = applier
        self._metrics = metrics
        self._batch_size = batch_size
        self._batch_timeout_ms = batch_timeout_ms
        self._lock = asyncio.Lock()
        self._revoking = False
        self._stop = asyncio.Event()
        # Per partition assigned and moved to its stored offset: the next offset to apply. Only
        # these partitions' records are applied; a batch given up is fetched again from here.
        self._next: dict[TopicPartition, int] = {}
        self._generation = 0  # bumped by every revocation and assignment
        self._to_commit: dict[TopicPartition, int] = {}
        self._committer: asyncio.Task[None] | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Consume until ``stop()``; the consumer must not be started yet (this subscribes it)."""
        self._consumer.subscribe(self._topics, listener=_Listener(self))
        await self._consumer.start()
        try:
            while not self._stop.is_set():
                generation = self._generation
                batch = await self._consumer.getmany(timeout_ms=self._batch_timeout_ms, max_records=self._batch_size)
                if batch:
                    await self._handle(batch, generation)
        finally:
            if self._committer is not None:
                await self._committer
            await self._consumer.stop()
            self._metrics.assigned.set(0)

    async def _handle(self, batch: dict[TopicPartition, list[ConsumerRecord]], generation: int) -> None:
        async with self._lock:
            if self._stop.is_set():
                return
            if generation != self._generation:
                # Fetched across a rebalance: some records may come from before the seeks to the
                # stored offsets. Drop them all and fetch again from the positions we know.
                self._rewind(batch)
                return
            records = [r for tp, rs in batch.items() if tp in self._next for r in rs]
            if not records:
                return
            expected = {tp: self._next[tp] for tp in batch if tp in self._next}
            try:
                offsets = await self._applier.handle(records, self._aborted, expected)
            except BatchAbandoned:
                log.info("batch of %d records abandoned (revoked or stopping)", len(records))
                self._rewind(batch)
                return
            except OffsetsBehind as behind:
                log.warning(
                    "%s: Postgres lost commits it had acknowledged (stored offsets behind on %s); applying "
                    "those records again", self.name, sorted(f"{tp.topic}[{tp.partition}]" for tp in behind.stored),
                )
                for tp, offset in behind.stored.items():
                    self._next[tp] = offset
                self._rewind(batch)
                return
            for tp, offset in offsets.items():
                if tp in self._next:
                    self._next[tp] = offset
        self._commit_later(offsets)

    def _aborted(self) -> bool:
        return self._revoking or self._stop.is_set()

    def _rewind(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """``getmany`` moved past records that were not applied: fetch them again."""
        owned = self._consumer.assignment()
        for tp in batch:
            if tp in self._next and tp in owned:
                self._consumer.seek(tp, self._next[tp])

    def _commit_later(self, offsets: dict[TopicPartition, int]) -> None:
        """Kafka commits run beside the loop (one at a time, the latest offsets win): they only
        serve lag tools, so the next batch need not wait for the broker."""
        self._to_commit.update(offsets)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())

    async def _commit_pending(self) -> None:
        while self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            await self._commit_to_kafka(offsets)

    async def _commit_to_kafka(self, offsets: dict[TopicPartition, int]) -> None:
        owned = self._consumer.assignment()
        mine = {tp: OffsetAndMetadata(o, "") for tp, o in offsets.items() if tp in owned}
        if not mine:
            return
        try:
            await asyncio.wait_for(self._consumer.commit(mine), _KAFKA_COMMIT_TIMEOUT)
        except (KafkaError, TimeoutError) as exc:  # visibility only: Postgres holds the real position
            log.debug("Kafka offset commit skipped: %s", describe_error(exc))
        except Exception:
            log.warning("Kafka offset commit failed (lag tools only; Postgres holds the position)", exc_info=True)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self._revoking = True
        try:
            async with self._lock:  # wait for (or abandon) the batch in flight
                self._next = {}
                self._generation += 1
        finally:
            self._revoking = False

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Seek every assigned partition to its stored offset (or the log start) before any batch runs.

        aiokafka lets ``getmany`` return records while this listener still runs, some of them
        fetched from Kafka's committed offsets: the lock keeps batches out meanwhile, and the new
        generation makes ``_handle`` drop whatever was fetched before the seeks.
        """
        async with self._lock:
            parts = sorted(assigned)
            stored = await self._load_offsets(parts)
            fresh = [tp for tp in parts if tp not in stored]
            for tp in parts:
                if tp in stored:
                    self._consumer.seek(tp, stored[tp])
            if fresh:
                await self._consumer.seek_to_beginning(*fresh)
            self._next = {tp: stored[tp] if tp in stored else await self._consumer.position(tp) for tp in parts}
            self._generation += 1
        self._metrics.assigned.set(len(parts))
        log.info("%s assigned %s (stored offsets %s)", self.name, [f"{tp.topic}[{tp.partition}]" for tp in parts],
                 {f"{tp.topic}[{tp.partition}]": o for tp, o in stored.items()})  # fmt: skip
        if not self.ready.is_set():
            self.ready.set()
            log.info("%s: %s", READY_LINE, self.name)

    async def _load_offsets(self, parts: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Without the stored offsets there is no safe position: retry until Postgres answers."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception), wait=wait_exponential(min=0.2, max=10),
            stop=lambda _state: self._stop.is_set(), reraise=True,
            before_sleep=_log_offsets_failure,
        )  # fmt: skip
        async for attempt in retrying:
            with attempt:
                return await self._store.load_offsets(parts)
        raise AssertionError("unreachable: tenacity either returns or raises")


def _log_offsets_failure(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("reading stored offsets failed (%s); retrying", describe_error(exc) if exc else "?")


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, projector: Projector) -> None:
        self._projector = projector

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._projector.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._projector.on_assigned(assigned)


# --- one projection as a process -----------------------------------------------------------------


@dataclass(frozen=True)
class Projection(Generic[E]):
    """A projection as its process runs it: every projector is one of these and starts
    through ``run_projector``.

    Its identity comes from ``process`` (``contracts.processes``): ``process.projection``
    keys its rows in ``projection_offsets``, its advisory locks and its metrics, and ends its
    readiness line (``projector started: <name>``); ``process.name`` keys its dead letters;
    ``process.inputs`` are the topics it reads. ``check_schema`` refuses to start on a
    database the SQL cannot work with; ``pool_init`` prepares each connection (codecs).
    """

    process: Process
    decode: Callable[[bytes], E]
    writer: Callable[[Settings], RowWriter[E]]
    check_schema: Callable[[asyncpg.Connection, Settings], Awaitable[None]]
    pool_init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None

    @property
    def name(self) -> str:
        assert self.process.projection is not None, f"{self.process.name} declares no projection"
        return self.process.projection


@dataclass
class Running:
    projector: Projector
    task: asyncio.Task[None]
    metrics: ProjectorMetrics
    metrics_port: int | None


@asynccontextmanager
async def running_projector(
    settings: Settings, projection: Projection[Any], *, group: str | None = None, metrics_port: int | None = None,
    policy: RetryPolicy | None = None,
) -> AsyncIterator[Running]:  # fmt: skip
    """Check the schema, build the projector's adapters, run it as a task, and tear everything
    down on exit. ``group``: its consumer group (default: the declared one). ``metrics_port``:
    None for no endpoint, 0 for a free port (tests), else that port.
    """
    group = group or projection.process.group_in(settings)
    async with AsyncExitStack() as resources:
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=1, max_size=2, statement_cache_size=settings.statement_cache_size,
            init=projection.pool_init,
        )  # fmt: skip
        resources.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            await projection.check_schema(conn, settings)
        metrics = ProjectorMetrics(projection.name)
        bound = None
        if metrics_port is not None:
            server = MetricsServer(metrics.registry, metrics_port, settings.projector_metrics_host)
            bound = server.start()
            resources.callback(server.stop)
        producer = make_producer(settings)
        resources.push_async_callback(producer.stop)
        await producer.start()
        store: PostgresProjectionStore[Any] = PostgresProjectionStore(pool, projection.name, projection.writer(settings),
                                                                      metrics)
        letters = KafkaDeadLetters(producer, cluster_cap=settings.kafka_max_message_bytes)
        applier = BatchApplier(stage=projection.process.name, decode=projection.decode, store=store,
                               dead_letters=letters, metrics=metrics, policy=policy)  # fmt: skip
        projector = Projector(
            name=projection.name, consumer=make_consumer(settings, group_id=group), topics=projection.process.inputs,
            store=store, applier=applier, metrics=metrics, batch_size=settings.projector_batch_size,
            batch_timeout_ms=settings.projector_batch_timeout_ms,
        )  # fmt: skip
        task = asyncio.create_task(projector.run(), name=f"projector-{group}")
        try:
            yield Running(projector, task, metrics, bound)
        finally:
            projector.stop()
            await task


async def serve(settings: Settings, projection: Projection[Any]) -> None:
    """Run until SIGTERM or SIGINT (the batch in flight finishes, the consumer leaves the group)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    group = projection.process.group_in(settings)
    port = projection.process.metrics_port(settings) or None
    async with running_projector(settings, projection, group=group, metrics_port=port) as r:
        log.info("consuming %s as group %s%s", ", ".join(projection.process.inputs), group,
                 f", metrics on :{r.metrics_port}" if r.metrics_port else "")  # fmt: skip
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, r.task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    log.info("projector stopped")


def run_projector(projection: Projection[Any]) -> None:
    """Every projector's ``python -m`` entry: settings and logging, then ``serve`` on uvloop if installed."""
    settings = process_settings()
    try:
        import uvloop
    except ImportError:  # optional: a faster event loop where installed
        asyncio.run(serve(settings, projection))
    else:
        uvloop.run(serve(settings, projection))
