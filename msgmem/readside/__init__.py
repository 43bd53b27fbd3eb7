"""The read-side service as deployed: the recall app (``projections.recall``: recall, the
memory API, the web console) with the console's pipeline page wired to ``msgmem.status`` and
``msgmem.dlq`` (``OperatorPipeline``), which the projections layer may not import itself.
Run it with ``python -m msgmem.readside`` (uvicorn on RECALL_HOST:RECALL_PORT)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts import deadletter
from contracts.settings import Settings
from msgmem import dlq
from msgmem.services import SERVICES
from msgmem.status import PartitionLag, assemble_lags
from runtime.kafka import connection_config, standalone_consumer
from projections.recall.console.pipeline import (
    DeadLetter, Erasure, Lag, PipelineView, Policy, RetryOutcome, consumption_rates,
)  # fmt: skip
from streams.media.retention_sweep import preview

log = logging.getLogger(__name__)


class OperatorPipeline:
    """The console's pipeline page over Kafka: lags as `msgmem status` counts them, dead letters
    as `msgmem dlq list` folds them, a retry as `msgmem dlq retry <id>` runs it.

    Unlike those commands, which connect, read and leave, it keeps its clients (an admin
    client, a group-less consumer, a Postgres connection) open between views, asks for every
    topic's end offsets in one request and every group's committed offsets at once, and reads
    the dead-letter topic incrementally (only what was appended since the last view, folded
    with what it read before): a view is a few round trips on open connections rather than
    twenty connections opened and closed (2 s). A client that fails is closed and opened
    again on the next view; the letters read so far are then read again from the start."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = asyncio.Lock()
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._db: asyncpg.Connection | None = None
        self._events: list[deadletter.AnyLetterEvent] = []
        self._read: dict[TopicPartition, int] = {}  # the dead-letter topic's next offset to read, per partition
        self._consumed: tuple[float, dict[str, int]] | None = None  # the last view's committed sums, for rates
        self._retention: tuple[float, list[Policy]] | None = None  # (when counted, the policies)
        self._recount: asyncio.Task[None] | None = None

    async def view(self) -> PipelineView:
        """What can be read now: a broker or database that does not answer leaves its part empty
        and says so (the error's type only), instead of failing the page."""
        async with self._lock:
            problems, lags, letters, ends, broken = [], [], [], None, False
            try:
                ends = await self._ends()
            except Exception as exc:  # noqa: BLE001 - shown on the page, the page still answers
                broken = True
                problems.append(f"lags unavailable ({type(exc).__name__})")
                problems.append(f"dead letters unavailable ({type(exc).__name__})")
            rates: dict[str, float] = {}
            if ends is not None:
                try:
                    lags = [_lag(p) for p in assemble_lags(ends, await self._committed())]
                    now = (time.monotonic(), _committed_sums(lags))
                    rates, self._consumed = consumption_rates(self._consumed, now), now
                except Exception as exc:  # noqa: BLE001
                    await self._drop_db()
                    problems.append(f"lags unavailable ({type(exc).__name__})")
                try:
                    found = (await self._letters(ends[deadletter.TOPIC])).values()
                    ordered = sorted(found, key=lambda x: (x.state != "open", -x.letter.failed_at.timestamp()))
                    letters = [_letter(x) for x in ordered]
                except Exception as exc:  # noqa: BLE001
                    broken = True
                    problems.append(f"dead letters unavailable ({type(exc).__name__})")
            if broken:  # the Kafka clients opened again next time (a group's coordinator not ready is no reason)
                await self._drop_kafka()
            retention, erasures = [], []
            try:
                erasures = [_erasure(r) for r in await (await self._database()).fetch(_ERASURES)]
                retention = await self._retention_preview()
            except Exception as exc:  # noqa: BLE001
                await self._drop_db()
                problems.append(f"retention and privacy requests unavailable ({type(exc).__name__})")
            if problems:
                log.warning("console pipeline page: %s", "; ".join(problems))
            return PipelineView(lags, letters, "; ".join(problems) or None, rates, retention, erasures)

    async def retry(self, letter_id: str, by: str) -> RetryOutcome | None:
        chosen = dlq.select(await dlq.load(self._settings), stage=None, ids=[letter_id], everything=False)
        if not chosen:
            return None
        [result] = await dlq.retry(self._settings, chosen, by=dlq.operator(by))
        return RetryOutcome(result.ok, result.detail)

    async def aclose(self) -> None:
        if self._recount is not None:
            self._recount.cancel()
        async with self._lock:
            await self._drop_kafka()
            await self._drop_db()

    # --- the reads ---------------------------------------------------------------------------

    async def _ends(self) -> dict[str, dict[TopicPartition, int]]:
        """The end offsets of every consumed topic and of the dead-letter topic, by declared name."""
        settings = self._settings
        if self._admin is None or self._consumer is None:
            await self._drop_kafka()
            admin = AIOKafkaAdminClient(**connection_config(settings))
            await admin.start()
            self._admin = admin
            self._consumer = await standalone_consumer(settings)
        names = sorted({t for s in SERVICES for t in s.inputs} | {deadletter.TOPIC})
        described = {d["topic"]: d for d in await self._admin.describe_topics([settings.topic(n) for n in names])}
        parts = []
        for name in names:  # the answers come in no particular order: by name
            d = described.get(settings.topic(name))
            if d is None or d.get("error_code"):
                raise KeyError(f"topic {name!r}: error {d['error_code'] if d else 'missing'}")
            parts += [TopicPartition(name, p["partition"]) for p in d["partitions"]]
        offsets = await self._consumer.end_offsets(parts)
        ends: dict[str, dict[TopicPartition, int]] = {n: {} for n in names}
        for tp, end in offsets.items():
            ends[tp.topic][tp] = end
        return ends

    async def _committed(self) -> dict[str, dict[tuple[str, int], int]]:
        """Every consuming service's committed offsets: a projector's in Postgres (one query for
        all), a stage's in its Kafka group (the groups asked at once)."""
        settings, admin = self._settings, self._admin
        assert admin is not None
        consumers = [s for s in SERVICES if s.consumes]
        rows = await (await self._database()).fetch(
            "select projection, topic, partition, next_offset from projection_offsets where projection = any($1::text[])",
            [s.projection for s in consumers if s.projection])  # fmt: skip
        out: dict[str, dict[tuple[str, int], int]] = {s.name: {} for s in consumers}
        by_projection = {s.projection: s.name for s in consumers if s.projection}
        for r in rows:
            out[by_projection[r["projection"]]][(r["topic"], r["partition"])] = r["next_offset"]
        grouped = [s for s in consumers if not s.projection]
        answers = await asyncio.gather(*(admin.list_consumer_group_offsets(s.group_in(settings)) for s in grouped))
        for service, offsets in zip(grouped, answers, strict=True):
            out[service.name] = {(settings.declared_topic(tp.topic), tp.partition): meta.offset
                                 for tp, meta in offsets.items() if meta.offset >= 0}  # fmt: skip
        return out

    async def _retention_preview(self) -> list[Policy]:
        """What each retention policy's next sweep removes. Counting it reads every row still
        holding derived text (hundreds of milliseconds at a million messages) and it moves
        slowly (a sweep runs hourly), so a view shows the last count, at most ``RETENTION_TTL``
        old, and a stale one is counted again in the background: only the first view waits."""
        now = time.monotonic()
        if self._retention is None:
            self._retention = (now, await _count_retention(self._settings))
        elif now - self._retention[0] > RETENTION_TTL and (self._recount is None or self._recount.done()):
            self._recount = asyncio.create_task(self._count_again())
        return self._retention[1]

    async def _count_again(self) -> None:
        try:
            self._retention = (time.monotonic(), await _count_retention(self._settings))
        except Exception as exc:  # noqa: BLE001 - the last count stays; tried again on a later view
            log.warning("console pipeline page: retention preview failed (%s)", type(exc).__name__)

    async def _database(self) -> asyncpg.Connection:
        settings = self._settings
        if self._db is None or self._db.is_closed():
            self._db = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
        return self._db

    async def _letters(self, ends: dict[TopicPartition, int]) -> dict[str, dlq.Letter]:
        """The dead letters folded, after reading what the topic gained since the last view."""
        consumer = self._consumer
        assert consumer is not None
        wanted = {tp: end for tp, end in ends.items() if end > self._read.get(tp, 0)}
        if any(end < self._read.get(tp, 0) for tp, end in ends.items()):  # the topic was recreated
            self._events, self._read = [], {}
            wanted = {tp: end for tp, end in ends.items() if end > 0}
        if wanted:
            consumer.assign(list(wanted))
            for tp in wanted:
                consumer.seek(tp, self._read.get(tp, 0))
            remaining = set(wanted)
            deadline = asyncio.get_running_loop().time() + 10
            try:
                while remaining:
                    if asyncio.get_running_loop().time() > deadline:
                        raise TimeoutError("the dead-letter topic was not read to its end offset in 10 s")
                    batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=10_000)
                    for tp, records in batch.items():
                        for record in records:
                            if record.offset < wanted[tp]:
                                try:
                                    self._events.append(deadletter.decode(record.value))
                                except ValueError:
                                    pass  # not ours (written by hand): nothing to retry
                    for tp in list(remaining):
                        # The position, not the last record: it also steps over transaction markers.
                        self._read[tp] = min(await consumer.position(tp), wanted[tp])
                        if self._read[tp] >= wanted[tp]:
                            remaining.discard(tp)
            except BaseException:
                self._events, self._read = [], {}  # read again from the start next time
                raise
        return dlq.fold(self._events)

    async def _drop_kafka(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        for close in ((consumer.stop if consumer else None), (admin.close if admin else None)):
            if close is not None:
                try:
                    await close()
                except Exception:  # noqa: BLE001 - a client already broken
                    pass

    async def _drop_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                await db.close(timeout=2)
            except Exception:  # noqa: BLE001
                db.terminate()


RETENTION_TTL = 300.0


async def _count_retention(settings: Settings) -> list[Policy]:
    """The retention preview on a connection of its own (a view's connection is not held for it)."""
    conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
    try:
        return [Policy(p.policy, p.render()) for p in await preview(conn, settings)]
    finally:
        await conn.close()


# The latest privacy requests applied, no personal data: the subject is a hash, not selected.
_ERASURES = """
select erasure_id, subject_kind, requested_at, completed_at, chats, removed from erasures
order by completed_at desc, erasure_id limit 20
"""


def _erasure(r: asyncpg.Record) -> Erasure:
    removed = orjson.loads(r["removed"]) if isinstance(r["removed"], str) else r["removed"]
    return Erasure(
        r["erasure_id"], r["subject_kind"], r["requested_at"].astimezone(UTC), r["completed_at"].astimezone(UTC),
        r["chats"], sum((removed.get("tables") or {}).values()), sum((removed.get("storage") or {}).values()),
    )  # fmt: skip


def _committed_sums(lags: list[Lag]) -> dict[str, int]:
    sums: dict[str, int] = {}
    for lag in lags:
        sums[lag.stage] = sums.get(lag.stage, 0) + (lag.committed or 0)
    return sums


def _lag(p: PartitionLag) -> Lag:
    return Lag(p.stage, p.topic, p.partition, p.committed, p.end, p.lag)


def _letter(x: dlq.Letter) -> DeadLetter:
    retried = x.retried
    return DeadLetter(
        id=x.letter.dead_letter_id, stage=x.letter.stage, state=x.state, error_type=x.letter.error_type,
        error=x.letter.error, failed_at=x.letter.failed_at.astimezone(UTC), failures=x.failures,
        retried_by=retried.retried_by if retried else None,
        retried_at=retried.retried_at.astimezone(UTC) if retried else None,
    )  # fmt: skip


__all__ = ["OperatorPipeline"]
