"""Running a stage's function over a batch of records: retries, dead letters, metrics.

Faust marks a message done (and commits past it) even when the agent's body raises, so
failures are handled here, per record, inside the loop: a transient error is retried with
exponential backoff; a poison input, or a transient one that outlives its attempts, goes
to wa.deadletter with the original bytes and the error. The batch always completes, so a
bad record never crashes the worker or blocks its partition.

Stages that wait on slow APIs run a batch's records concurrently (``concurrency``), each
with its own retries; outputs are still written in input order, after the whole batch.
A ``TransientError`` may carry the server's Retry-After, which then replaces the backoff.
A ``StoreUnavailable`` (our own Postgres is down) is not the record's fault: the record is held
and retried with backoff for as long as it lasts, its attempts not counted.
``give_up`` lets a stage record the failure in its own topic beside the dead letter.
``screen`` is read once per batch, before any handler runs: the records it hides (inputs of
chats erased since) are skipped and their outputs dropped. It waits, never raises, while its
source is unreadable, so an outage of what it reads holds the batch instead of failing records.
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
from contracts.errors import describe_error
from runtime.errors import StoreUnavailable, TransientError
from streams.common.outage import Outage
from streams.common.outputs import OutputWriter, RecordTooLarge
from streams.common.records import InputRecord, Output

log = logging.getLogger(__name__)

Handler = Callable[[InputRecord], Awaitable[list[Output]]]
# (the record, the last error, attempts made) -> extra outputs written beside its dead letter
GiveUp = Callable[[InputRecord, BaseException, int], Sequence[Output]]
Sleep = Callable[[float], Awaitable[None]]
# (key, value) -> whether the record is hidden
Hides = Callable[[bytes | None, bytes], bool]
# read once per batch; None when it hides nothing
Screen = Callable[[], Awaitable[Hides | None]]


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all; after failed attempt n wait ``min_seconds * 2**(n-1)``, at most
    ``max_seconds``, or the error's Retry-After (at most ``retry_after_max_seconds``)."""

    attempts: int = 3
    min_seconds: float = 1.0
    max_seconds: float = 8.0
    retry_after_max_seconds: float = 60.0
    #: the longest wait between two tries of a record held while our own store is unavailable
    hold_max_seconds: float = 8.0

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
    screen: Screen | None = None


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
        screen: Screen | None = None, sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.stage = stage
        self._handler = handler
        self._writer = writer
        self._policy = policy
        self.metrics = metrics or StageMetrics(stage)
        self._concurrency = max(1, concurrency)
        self._give_up = give_up
        self._screen = screen
        self._sleep = sleep
        self._store_outage = Outage(f"{stage}: reaching the store")

    async def run_batch(self, records: Sequence[InputRecord]) -> None:
        """Process every record; return only when each record's outputs, or its dead letter,
        are acknowledged by the broker. Never raises but for cancellation: a handler's failure
        dead-letters its record, a transient write failure is retried inside the writer, and an
        output over its topic's limit dead-letters the record that produced it, alone."""
        with self.metrics.batch_seconds.time():
            hides = await self._screen() if self._screen is not None else None
            if self._concurrency == 1 or len(records) < 2:
                results = [await self._screened(record, hides) for record in records]
            else:
                limit = asyncio.Semaphore(self._concurrency)

                async def limited(record: InputRecord) -> _Result:
                    async with limit:
                        return await self._screened(record, hides)

                results = list(await asyncio.gather(*(limited(r) for r in records)))
            refused = await self._writer.write_groups([r.outputs for r in results])
            if refused:
                await self._dead_letter_refused(records, results, refused)
            self.metrics.processed.inc(len(records))
            self.metrics.outputs.inc(sum(len(r.outputs) for i, r in enumerate(results) if i not in refused))

    async def _dead_letter_refused(
        self, records: Sequence[InputRecord], results: list[_Result], refused: dict[int, RecordTooLarge]
    ) -> None:
        """Outputs too large for their topic: the input goes to wa.deadletter instead, with its
        value left out (and read again from its coordinates on retry) if even that is too large."""
        letters: dict[int, DeadLettered] = {}
        groups: dict[int, list[Output]] = {}
        for index, too_large in refused.items():
            record, result = records[index], results[index]
            if result.letter is None:
                letters[index] = self._letter(record, too_large, 1)
                groups[index] = [_letter_output(self.stage, letters[index]), *self._gave_up(record, too_large, 1)]
            else:
                letters[index] = result.letter.without_value()
                groups[index] = [_letter_output(self.stage, letters[index]), *result.outputs[1:]]
        order = sorted(groups)
        again = await self._writer.write_groups([groups[i] for i in order])
        if again:
            last = [order[position] for position in again]
            still = await self._writer.write_groups(
                [[_letter_output(self.stage, letters[i].without_value())] for i in last]
            )
            for position in still:
                record = records[last[position]]
                log.error("%s: could not even dead-letter %s[%d]@%d without its value",
                          self.stage, record.topic, record.partition, record.offset)  # fmt: skip

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self._policy.delay(state.attempt_number, error)

    async def _screened(self, record: InputRecord, hides: Hides | None) -> _Result:
        if hides is None:
            return await self._run_one(record)
        try:
            hidden = hides(record.key, record.value)
        except Exception as exc:  # noqa: BLE001 - a record the screen cannot read is a poison input
            return self._failed(record, exc, 0)
        if hidden:
            return _Result([])
        result = await self._run_one(record)
        if result.letter is not None:
            return result
        return _Result([o for o in result.outputs if not hides(o.key, o.value)])

    async def _run_one(self, record: InputRecord) -> _Result:
        if self._policy.attempts == 1:
            # No retries to schedule (normalize): skip tenacity's per-record machinery.
            try:
                return _Result(await self._held(record))
            except Exception as exc:  # noqa: BLE001 - every failure becomes a dead letter, never a crash
                return self._failed(record, exc, 1)
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
                    return _Result(await self._held(record))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dead letter, never a crash
            return self._failed(record, exc, attempts)
        raise RetryError  # pragma: no cover - AsyncRetrying either returns or raises

    async def _held(self, record: InputRecord) -> list[Output]:
        """The handler, called again (0.5 s doubling to ``hold_max_seconds``) while our own store
        is unavailable."""
        failures = 0
        while True:
            try:
                outputs = await self._handler(record)
            except StoreUnavailable as exc:
                failures += 1
                self._store_outage.failed(exc)
                await self._sleep(min(self._policy.hold_max_seconds, 0.5 * 2 ** (failures - 1)))
                continue
            if failures:
                self._store_outage.recovered()
            return outputs

    def _failed(self, record: InputRecord, exc: BaseException, attempts: int) -> _Result:
        letter = self._letter(record, exc, attempts)
        return _Result([_letter_output(self.stage, letter), *self._gave_up(record, exc, attempts)], letter)

    def _gave_up(self, record: InputRecord, exc: BaseException, attempts: int) -> Sequence[Output]:
        if self._give_up is None:
            return ()
        try:
            return self._give_up(record, exc, attempts)
        except Exception:  # noqa: BLE001 - the dead letter is written anyway; the hook only adds to it
            log.exception(
                "%s: give-up hook failed for %s[%d]@%d", self.stage, record.topic, record.partition, record.offset
            )  # the traceback's exception lines are described too (runtime.logging_setup)
            return ()

    def _letter(self, record: InputRecord, exc: BaseException, attempts: int) -> DeadLettered:
        self.metrics.failed.inc()
        log.warning(
            "%s: dead-lettering %s[%d]@%d after %d attempt(s): %s",
            self.stage, record.topic, record.partition, record.offset, attempts, describe_error(exc),
        )
        return DeadLettered.of(
            self.stage, topic=record.topic, partition=record.partition, offset=record.offset,
            key=record.key, value=record.value, headers=record.headers, error=exc, attempts=attempts,
        )


@dataclass(frozen=True)
class _Result:
    """What one input produced: its outputs, or (``letter`` set) its dead letter first and
    the give-up hook's outputs after it."""

    outputs: list[Output]
    letter: DeadLettered | None = None


def _letter_output(stage: str, letter: DeadLettered) -> Output:
    return Output(deadletter.TOPIC, stage.encode(), letter.encode())
