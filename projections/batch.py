"""One batch of records -> rows: decode, dead-letter poison, write with retries, bisect.

The store writes a batch and the batch's next offsets in one transaction. This module only
decides what to do when that fails (see ``projections.errors``):

- a record that does not decode (``EventDecodeError``, or anything an upcaster raises) is
  dead-lettered at once and the rest goes on;
- an unavailable Postgres or broker is retried with capped backoff until it works or the
  batch is abandoned (partitions revoked, projector stopping);
- a batch Postgres refuses for its data is retried a few times, then split in halves in
  log order: halves that succeed are committed (with their own offsets), single events
  that still fail are dead-lettered, and a last transaction stores the offsets of the
  whole batch. Every letter is acknowledged before any transaction storing an offset past
  its record commits, so a crash never loses one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from aiokafka import ConsumerRecord, TopicPartition
from tenacity import (
    AsyncRetrying, RetryCallState, retry_if_exception_type, retry_if_not_exception_type, wait_exponential,
)

from contracts.deadletter import DeadLettered
from contracts.envelope import EventDecodeError
from contracts.errors import describe_error
from projections.deadletter_port import DeadLetters
from projections.errors import BatchAbandoned, OffsetsBehind, is_poison
from projections.items import Item, next_offsets
from projections.metrics import ProjectorMetrics

log = logging.getLogger(__name__)

E = TypeVar("E")
T = TypeVar("T")


@dataclass(frozen=True)
class Applied:
    applied: int
    skipped: int  # below the stored offset: another process (or an earlier attempt) applied them


class ProjectionStore(Protocol[E]):
    """Where a projection's rows and its offsets live (Postgres; a fake in unit tests)."""

    async def load_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The stored next offsets; partitions never written are absent."""
        ...

    async def apply(
        self, items: Sequence[Item[E]], offsets: Mapping[TopicPartition, int],
        expected: Mapping[TopicPartition, int] | None = None,
    ) -> Applied:
        """Write ``items`` and store ``offsets`` in one transaction, skipping items already applied.
        ``expected``: where this projector believes each partition's stored offset is; a stored
        offset below it raises ``OffsetsBehind`` (commits were lost) and writes nothing."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    poison_attempts: int = 3  # attempts of a whole batch Postgres refuses, before bisecting
    min_wait: float = 0.2
    max_wait: float = 5.0  # a Postgres restart is noticed within seconds of its return


class _Refused(Exception):
    """The store refused the items for their data, after the allowed attempts."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(describe_error(cause))
        self.cause = cause


class BatchApplier(Generic[E]):
    def __init__(
        self, *, stage: str, decode: Callable[[bytes], E], store: ProjectionStore[E], dead_letters: DeadLetters,
        metrics: ProjectorMetrics, policy: RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        self._stage = stage
        self._decode = decode
        self._store = store
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._policy = policy or RetryPolicy()

    async def handle(
        self, records: Sequence[ConsumerRecord], aborted: Callable[[], bool],
        expected: Mapping[TopicPartition, int] | None = None,
    ) -> dict[TopicPartition, int]:
        """Apply one batch; return the next offsets now stored. Raises ``BatchAbandoned``, and
        ``OffsetsBehind`` when the stored offsets are below ``expected`` (nothing written)."""
        started = time.perf_counter()
        offsets = next_offsets((r.topic, r.partition, r.offset) for r in records)
        items: list[Item[E]] = []
        letters: list[DeadLettered] = []
        for record in records:
            try:
                items.append(self._item(record))
            except Exception as exc:  # EventDecodeError, or an upcaster's bug: poison either way
                letters.append(self._letter(record.topic, record.partition, record.offset, record.key,
                                            record.value, tuple(record.headers), exc, attempts=1))  # fmt: skip
        if letters:
            await self._send(letters, "undecodable", aborted)
        try:
            await self._write(items, offsets, aborted, self._policy.poison_attempts, expected)
        except _Refused as refused:
            log.warning("batch of %d events refused (%s); bisecting to find the poison", len(items), describe_error(refused.cause))
            await self._settle(items, aborted)
            await self._write([], offsets, aborted, 1)
        self._metrics.batches.inc()
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        return offsets

    def _item(self, record: ConsumerRecord) -> Item[E]:
        if record.value is None:
            raise EventDecodeError("record without a value")
        return Item(self._decode(record.value), record.topic, record.partition, record.offset, record.key,
                    record.value, tuple(record.headers))  # fmt: skip

    async def _settle(self, items: Sequence[Item[E]], aborted: Callable[[], bool]) -> None:
        """Commit what Postgres accepts, in log order; dead-letter single events it refuses."""
        if not items:
            return
        try:
            await self._write(items, next_offsets((i.topic, i.partition, i.offset) for i in items), aborted, 1)
        except _Refused as refused:
            if len(items) == 1:
                i = items[0]
                letter = self._letter(i.topic, i.partition, i.offset, i.key, i.value, i.headers, refused.cause,
                                      attempts=self._policy.poison_attempts)  # fmt: skip
                await self._send([letter], "refused", aborted)
                return
            middle = len(items) // 2
            await self._settle(items[:middle], aborted)
            await self._settle(items[middle:], aborted)

    async def _write(
        self, items: Sequence[Item[E]], offsets: Mapping[TopicPartition, int], aborted: Callable[[], bool],
        poison_attempts: int, expected: Mapping[TopicPartition, int] | None = None,
    ) -> None:  # fmt: skip
        try:
            result = await self._retrying(lambda: self._store.apply(items, offsets, expected), aborted, poison_attempts)
        except Exception as exc:
            if is_poison(exc):
                raise _Refused(exc) from exc
            raise
        self._metrics.applied.inc(result.applied)
        self._metrics.skipped.inc(result.skipped)

    async def _send(self, letters: list[DeadLettered], reason: str, aborted: Callable[[], bool]) -> None:
        for letter in letters:
            log.warning("dead-lettering %s (%s)", letter.dead_letter_id, letter.summary[:200])
        await self._retrying(lambda: self._dead_letters.publish(letters), aborted, poison_attempts=0)
        self._metrics.dead_lettered(reason, len(letters))

    async def _retrying(self, call: Callable[[], Awaitable[T]], aborted: Callable[[], bool], poison_attempts: int) -> T:
        """``call`` until it succeeds; poison errors give up after ``poison_attempts`` (0: never retried
        specially), other errors only when ``aborted()`` says so."""

        def stop(state: RetryCallState) -> bool:
            if aborted():
                return True
            exc = state.outcome.exception() if state.outcome else None
            return exc is not None and is_poison(exc) and state.attempt_number >= max(poison_attempts, 1)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            kind = "poison" if exc is not None and is_poison(exc) else "transient"
            self._metrics.retried(kind)
            log.warning("attempt %d failed (%s); retrying", state.attempt_number, describe_error(exc) if exc else "?")

        policy = self._policy
        retrying = AsyncRetrying(
            stop=stop, reraise=True, before_sleep=before_sleep,
            retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(OffsetsBehind),
            wait=wait_exponential(multiplier=policy.min_wait, min=policy.min_wait, max=policy.max_wait),
        )  # fmt: skip
        try:
            async for attempt in retrying:
                with attempt:
                    return await call()
        except OffsetsBehind:
            raise
        except Exception:
            if aborted():
                raise BatchAbandoned("partitions revoked or stopping") from None
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _letter(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: tuple[tuple[str, bytes], ...], error: BaseException, *, attempts: int,
    ) -> DeadLettered:  # fmt: skip
        return DeadLettered.of(self._stage, topic=topic, partition=partition, offset=offset, key=key, value=value,
                               headers=headers, error=error, attempts=attempts)  # fmt: skip
