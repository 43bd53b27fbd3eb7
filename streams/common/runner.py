"""Running a stage's function over a batch of records: retries, dead letters, metrics.

Faust marks a message done (and commits past it) even when the agent's body raises, so
failures are handled here, per record, inside the loop: a transient error is retried with
exponential backoff; a poison input, or a transient one that outlives its attempts, goes
to wa.deadletter with the original bytes and the error. The batch always completes, so a
bad record never crashes the worker or blocks its partition.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from tenacity import AsyncRetrying, RetryError, retry_if_exception, stop_after_attempt, wait_exponential

from contracts import deadletter
from contracts.deadletter import DeadLettered
from streams.common.outputs import OutputWriter
from streams.common.records import InputRecord, Output

log = logging.getLogger(__name__)

Handler = Callable[[InputRecord], Awaitable[list[Output]]]


class TransientError(Exception):
    """An I/O failure worth retrying (timeouts, 429, 5xx). Anything else is poison."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    min_seconds: float = 1.0
    max_seconds: float = 8.0


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
        metrics: StageMetrics | None = None,
    ) -> None:
        self.stage = stage
        self._handler = handler
        self._writer = writer
        self._policy = policy
        self.metrics = metrics or StageMetrics(stage)

    async def run_batch(self, records: Sequence[InputRecord]) -> None:
        """Process every record; return only when all outputs and dead letters are durable."""
        with self.metrics.batch_seconds.time():
            outputs: list[Output] = []
            for record in records:
                outputs.extend(await self._run_one(record))
            await self._writer.write(outputs)
            self.metrics.processed.inc(len(records))
            self.metrics.outputs.inc(len(outputs))

    async def _run_one(self, record: InputRecord) -> list[Output]:
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._policy.attempts),
                wait=wait_exponential(min=self._policy.min_seconds, max=self._policy.max_seconds),
                retry=retry_if_exception(lambda exc: isinstance(exc, TransientError)),
                before_sleep=lambda _state: self.metrics.retried.inc(),
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return await self._handler(record)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dead letter, never a crash
            return [self._dead_letter(record, exc, attempts)]
        raise RetryError  # pragma: no cover - AsyncRetrying either returns or raises

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
