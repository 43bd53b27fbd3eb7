"""The port a stage writes through, its Kafka adapter and a recording fake.

A stage writes a batch as *groups*, one per input record: the outputs that input produced.
``write_groups`` returns only once every group is acknowledged by the broker or refused for
good. Refused means one thing only: a record over its topic's size limit, which no retry can
fix; the caller then dead-letters that input alone. Every other failure (a broker outage, a
leader change, a timed-out request) is retried with backoff, on a fresh producer, for as long
as it lasts: the input partition waits, and nothing is acknowledged upstream meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from contracts.errors import SafeError
from contracts.settings import Settings
from contracts.topics import limit_of, record_size
from runtime.kafka import make_producer
from streams.common.outage import Outage
from streams.common.records import Output

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
_SIZE_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError)


class RecordTooLarge(SafeError):
    """An output over its topic's record limit: retrying cannot help. Names the topic and sizes only."""

    def __init__(self, topic: str, size: int, limit: int) -> None:
        super().__init__(f"an output to {topic} is {size:,} bytes, over the topic's limit of {limit:,} bytes")
        self.topic = topic
        self.size = size
        self.limit = limit


class OutputWriter(Protocol):
    async def write_groups(self, groups: Sequence[Sequence[Output]]) -> dict[int, RecordTooLarge]:
        """Return once every group is acknowledged or refused; the refused ones by index."""

    async def write(self, outputs: Sequence[Output]) -> None:
        """Write one group; raises ``RecordTooLarge`` if it is refused."""


def oversize(group: Sequence[Output], cluster_cap: int | None) -> RecordTooLarge | None:
    """Pure: the first output of ``group`` over its topic's limit, as the error to report."""
    for out in group:
        size = record_size(out.key, out.value, out.headers)
        limit = limit_of(out.topic, cluster_cap)
        if size > limit:
            return RecordTooLarge(out.topic, size, limit)
    return None


class KafkaOutputs:
    """Writes with the project's durable producer (acks=all, idempotent).

    A round enqueues every pending record first and then waits for all acknowledgements, so
    records share broker round trips. After a failed round the producer is replaced (an
    idempotent producer whose batches expired can refuse the next ones out of sequence) and
    only the records not yet acknowledged are sent again, after a backoff of 0.5 s doubling
    to ``max_backoff``.
    """

    def __init__(
        self, factory: Callable[[], AIOKafkaProducer], *, cluster_cap: int | None = None,
        max_backoff: float = 5.0, sleep: Sleep = asyncio.sleep,
    ) -> None:  # fmt: skip
        self._factory = factory
        self._producer: AIOKafkaProducer | None = None
        self._cap = cluster_cap
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._outage = Outage("writing outputs")

    @classmethod
    async def start(cls, settings: Settings) -> "KafkaOutputs":
        """A writer with a started producer; raises if the broker cannot be reached now."""
        writer = cls(lambda: make_producer(settings), cluster_cap=settings.kafka_max_message_bytes)
        await writer._ready()
        return writer

    async def _ready(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._factory()
            try:
                await producer.start()
            except BaseException:
                await _close_quietly(producer)
                raise
            self._producer = producer
        return self._producer

    async def _replace_producer(self) -> None:
        old, self._producer = self._producer, None
        if old is not None:
            await _close_quietly(old)

    async def write(self, outputs: Sequence[Output]) -> None:
        refused = await self.write_groups([outputs])
        if refused:
            raise refused[0]

    async def write_groups(self, groups: Sequence[Sequence[Output]]) -> dict[int, RecordTooLarge]:
        refused: dict[int, RecordTooLarge] = {}
        pending: list[tuple[int, Output]] = []
        for index, group in enumerate(groups):
            too_large = oversize(group, self._cap)
            if too_large is not None:
                refused[index] = too_large
            else:
                pending.extend((index, out) for out in group)
        failed_rounds = 0
        while pending:
            retry, size_suspects, error = await self._round(pending)
            for index, out in size_suspects:
                if index in refused:
                    continue
                verdict = await self._alone(out)
                if isinstance(verdict, RecordTooLarge):
                    refused[index] = verdict
                elif verdict is not None:
                    retry.append((index, out))
                    error = error or verdict
            pending = [(index, out) for index, out in retry if index not in refused]
            if pending:
                failed_rounds += 1
                self._outage.failed(error or RuntimeError("unacknowledged"))
                await self._replace_producer()
                await self._sleep(min(self._max_backoff, 0.5 * 2 ** (failed_rounds - 1)))
        if failed_rounds:
            self._outage.recovered()
        return refused

    async def _round(
        self, pending: list[tuple[int, Output]]
    ) -> tuple[list[tuple[int, Output]], list[tuple[int, Output]], BaseException | None]:
        """Send every pending record once: (to retry, refused by size, an error seen)."""
        retry: list[tuple[int, Output]] = []
        suspects: list[tuple[int, Output]] = []
        sent: list[tuple[tuple[int, Output], asyncio.Future[object]]] = []
        error: BaseException | None = None
        try:
            producer = await self._ready()
        except Exception as exc:  # noqa: BLE001 - the broker is unreachable: wait and try again
            return list(pending), [], exc
        for position, item in enumerate(pending):
            index, out = item
            try:
                future = await producer.send(out.topic, out.value, key=out.key, headers=list(out.headers))
            except _SIZE_ERRORS:
                suspects.append(item)
            except Exception as exc:  # noqa: BLE001 - metadata or connection trouble: this record and the rest wait
                retry.extend(pending[position:])
                error = exc
                break
            else:
                sent.append((item, future))
        results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        for (item, _), result in zip(sent, results, strict=True):
            if isinstance(result, _SIZE_ERRORS):
                suspects.append(item)
            elif isinstance(result, BaseException):
                retry.append(item)
                error = error or result
        return retry, suspects, error

    async def _alone(self, out: Output) -> RecordTooLarge | BaseException | None:
        """The broker refused a batch as too large: send this record in a batch of its own to
        learn whether it is the culprit (None: it was written)."""
        try:
            producer = await self._ready()
            await (await producer.send(out.topic, out.value, key=out.key, headers=list(out.headers)))
        except _SIZE_ERRORS:
            size = record_size(out.key, out.value, out.headers)
            return RecordTooLarge(out.topic, size, limit_of(out.topic, self._cap))
        except Exception as exc:  # noqa: BLE001 - retried with the rest
            return exc
        return None

    async def stop(self) -> None:
        await self._replace_producer()


async def _close_quietly(producer: AIOKafkaProducer) -> None:
    """Stop a producer without waiting on an unreachable broker for long."""
    try:
        await asyncio.wait_for(producer.stop(), 5.0)
    except Exception:  # noqa: BLE001 - it is being replaced; what it held is sent again
        log.debug("producer stop failed", exc_info=True)


class RecordingOutputs:
    """A fake that keeps what it was asked to write; ``cluster_cap`` refuses outputs over it,
    and ``fail_rounds`` makes the first rounds fail as a broker outage would."""

    def __init__(self, *, cluster_cap: int | None = None, fail_rounds: int = 0) -> None:
        self.written: list[Output] = []
        self.rounds = 0
        self._cap = cluster_cap
        self._fail_rounds = fail_rounds

    async def write_groups(self, groups: Sequence[Sequence[Output]]) -> dict[int, RecordTooLarge]:
        refused: dict[int, RecordTooLarge] = {}
        while self.rounds < self._fail_rounds:
            self.rounds += 1
            await asyncio.sleep(0)
        self.rounds += 1
        for index, group in enumerate(groups):
            too_large = oversize(group, self._cap)
            if too_large is not None:
                refused[index] = too_large
            else:
                self.written.extend(group)
        return refused

    async def write(self, outputs: Sequence[Output]) -> None:
        refused = await self.write_groups([outputs])
        if refused:
            raise refused[0]
