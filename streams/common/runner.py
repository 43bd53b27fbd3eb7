"""Running a stage's function over a batch of records: retries, dead letters, metrics.

Faust marks a message done (and commits past it) even when the agent's body raises, so
failures are handled here, per record, inside the loop: a transient error is retried with
exponential backoff; a poison input, or a transient one that outlives its attempts, goes
to wa.deadletter with the original bytes and the error. The batch always completes, so a
bad record never crashes the worker or blocks its partition.

Stages that wait on slow APIs run a batch's records concurrently (``concurrency``), each
with its own retries; outputs are still written in input order, after the whole batch.
A ``TransientError`` may carry the server's Retry-After, which then replaces the backoff.
``give_up`` lets a stage record the failure in its own topic beside the dead letter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception, stop_after_attempt

from contracts import deadletter
from contracts.deadletter import DeadLettered
from streams.common.outputs import OutputWriter
from streams.common.records import InputRecord, Output

log = logging.getLogger(__name__)

Handler = Callable[[InputRecord], Awaitable[list[Output]]]
# (the record, the last error, attempts made) -> extra outputs written beside its dead letter
GiveUp = Callable[[InputRecord, BaseException, int], Sequence[Output]]
Sleep = Callable[[float], Awaitable[None]]


class TransientError(Exception):
    """An I/O failure worth retrying (timeouts, 429, 5xx). Anything else is poison.

    ``retry_after``: seconds the server asked us to wait (a 429's Retry-After), if it said.
    """

    def __init__(self, *args: object, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all; after failed attempt n wait ``min_seconds * 2**(n-1)``, at most
    ``max_seconds``, or the error's Retry-After (at most ``retry_after_max_seconds``)."""

    attempts: int = 3
    min_seconds: float = 1.0
    max_seconds: float = 8.0
    retry_after_max_seconds: float = 60.0

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            return min(float(retry_after), self.retry_after_max_seconds)
        return min(self.max_seconds, self.min_seconds * 2 ** (attempt - 1))


@dataclass(frozen=True)
class StageParts:
    """What a stage's composition root hands the runner: the handler and, optionally, its give-up hook."""

    handler: Handler
    give_up: GiveUp | None = None


class StageMetrics:
    def __init__(self, stage: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = {"stage": stage}
        self.processed = Counter("msgmem_stage_processed", "Inputs processed", ["stage"], registry=self.registry).labels(**labels)
        self.failed = Counter("msgmem_stage_dead_lettered", "Inputs sent to wa.deadletter", ["stage"], registry=self.registry).labels(**labels)
        self.retried = Counter("msgmem_stage_retried", "Retries after transient errors", ["stage"], registry=self.registry).labels(**labels)
        self.outputs = Counter("msgmem_stage_outputs", "Records written", ["stage"], registry=self.registry).labels(**labels)
        self.batch_seconds = Histogram(
            "msgmem_stage_batch_seconds", "Time to process a batch", ["stage"], registry=self.registry
        ).labels(**labels)


class StageRunner:
    def __init__(
        self, stage: str, handler: Handler, writer: OutputWriter, *, policy: RetryPolicy = RetryPolicy(),
        metrics: StageMetrics | None = None, concurrency: int = 1, give_up: GiveUp | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.stage = stage
        self._handler = handler
        self._writer = writer
        self._policy = policy
        self.metrics = metrics or StageMetrics(stage)
        self._concurrency = max(1, concurrency)
        self._give_up = give_up
        self._sleep = sleep

    async def run_batch(self, records: Sequence[InputRecord]) -> None:
        """Process every record; return only when all outputs and dead letters are durable."""
        with self.metrics.batch_seconds.time():
            outputs: list[Output] = []
            if self._concurrency == 1 or len(records) < 2:
                for record in records:
                    outputs.extend(await self._run_one(record))
            else:
                limit = asyncio.Semaphore(self._concurrency)

                async def limited(record: InputRecord) -> list[Output]:
                    async with limit:
                        return await self._run_one(record)

                for produced in await asyncio.gather(*(limited(r) for r in records)):
                    outputs.extend(produced)
            await self._writer.write(outputs)
            self.metrics.processed.inc(len(records))
            self.metrics.outputs.inc(len(outputs))

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self._policy.delay(state.attempt_number, error)

    async def _run_one(self, record: InputRecord) -> list[Output]:
        if self._policy.attempts == 1:
            # No retries to schedule (normalize): skip tenacity's per-record machinery.
            try:
                return await self._handler(record)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a dead letter, never a crash
                return [self._dead_letter(record, exc, 1), *self._gave_up(record, exc, 1)]
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._policy.attempts),
                wait=self._wait,
                retry=retry_if_exception(lambda exc: isinstance(exc, TransientError)),
                before_sleep=lambda _state: self.metrics.retried.inc(),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return await self._handler(record)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dead letter, never a crash
            return [self._dead_letter(record, exc, attempts), *self._gave_up(record, exc, attempts)]
        raise RetryError  # pragma: no cover - AsyncRetrying either returns or raises

    def _gave_up(self, record: InputRecord, exc: BaseException, attempts: int) -> Sequence[Output]:
        if self._give_up is None:
            return ()
        try:
            return self._give_up(record, exc, attempts)
        except Exception:  # noqa: BLE001 - the dead letter is written anyway; the hook only adds to it
            log.exception(
                "%s: give-up hook failed for %s[%d]@%d", self.stage, record.topic, record.partition, record.offset
            )
            return ()

    def _dead_letter(self, record: InputRecord, exc: BaseException, attempts: int) -> Output:
        self.metrics.failed.inc()
        log.warning(
            "%s: dead-lettering %s[%d]@%d after %d attempt(s): %s: %s",
            self.stage, record.topic, record.partition, record.offset, attempts, type(exc).__name__, exc,
        )
        letter = DeadLettered.of(
            self.stage, topic=record.topic, partition=record.partition, offset=record.offset,
            key=record.key, value=record.value, headers=record.headers, error=exc, attempts=attempts,
        )
        return Output(deadletter.TOPIC, self.stage.encode(), letter.encode())
