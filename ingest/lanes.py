"""Deliveries bound for one wa.raw partition, sent as one batch per broker round trip.

aiokafka's ``send()`` costs about 15 µs of CPU per record (metadata wait, partitioner,
size checks, a future and a ``RecordMetadata`` each): a tenth of what ingest spends on a
webhook. Ingest appends many small records to a few partitions, so a lane gathers them
itself and hands each batch over in one call. Nothing about ordering or durability
changes: a lane keeps at most one batch at the broker, as aiokafka does per partition,
and every record still waits for the broker's acknowledgement (acks=all, idempotent).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka.errors import KafkaError

from contracts.raw import KafkaHeaders
from ingest.errors import BrokerUnavailable

log = logging.getLogger(__name__)

Record = tuple[bytes, bytes, KafkaHeaders]
"""key, value, headers"""

SendBatch = Callable[[list[Record], int], Awaitable[None]]
"""Append records to a partition and return once the broker acknowledged all of them."""

BROKER_ERRORS = (KafkaError, TimeoutError, OSError)


@dataclass(slots=True)
class _Waiting:
    record: Record
    arrived: float
    acked: asyncio.Future[None]


class PartitionLane:
    """Records for one partition. While a batch is at the broker, the records that arrive
    wait here and leave together in the next batch; under load a batch holds every
    delivery of one round trip.

    A batch must be acknowledged by ``timeout`` seconds after its oldest record arrived,
    so no caller waits longer than that, however long the queue before it was.
    """

    def __init__(self, partition: int, send: SendBatch, *, timeout: float, linger: float) -> None:
        self.partition = partition
        self._send = send
        self._timeout = timeout
        self._linger = linger
        self._waiting: list[_Waiting] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, record: Record) -> asyncio.Future[None]:
        """Queue a record; the future resolves on the broker's ack or fails with
        ``BrokerUnavailable``. Cancelling it gives up waiting, not the write."""
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()
        self._waiting.append(_Waiting(record, loop.time(), acked))
        if self._task is None:
            self._task = loop.create_task(self._run(), name=f"wa.raw-lane-{self.partition}")
        return acked

    @property
    def idle(self) -> bool:
        return self._task is None

    async def drained(self) -> None:
        """Wait until every queued record is settled (acknowledged or failed)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                pause = self._waiting[0].arrived + self._linger - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                batch, self._waiting = self._waiting, []
                await self._flush(batch)
        finally:
            self._task = None

    async def _flush(self, batch: list[_Waiting]) -> None:
        failure: BaseException | None = None
        try:
            async with asyncio.timeout_at(batch[0].arrived + self._timeout):
                await self._send([w.record for w in batch], self.partition)
        except asyncio.CancelledError:
            _settle(batch, BrokerUnavailable("ingest is shutting down"))
            raise
        except BROKER_ERRORS as exc:
            failure = BrokerUnavailable(f"broker did not acknowledge the write ({type(exc).__name__})")
        except Exception as exc:  # a bug, not the broker: fail loudly, never leave callers hanging
            log.exception("appending a batch of %d records to partition %d failed", len(batch), self.partition)
            failure = exc
        _settle(batch, failure)


def _settle(batch: list[_Waiting], failure: BaseException | None) -> None:
    for waiting in batch:
        if waiting.acked.done():  # its caller gave up
            continue
        if failure is None:
            waiting.acked.set_result(None)
        else:
            # one copy each: a shared exception object would collect every caller's traceback
            waiting.acked.set_exception(copy.copy(failure))
