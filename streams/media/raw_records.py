"""Reading one wa.raw record again, by its place in the log: where inline media bytes live.

Evolution with webhook_base64 puts a message's file in the delivery itself. normalize keeps
those bytes out of wa.messages and records where the delivery is (``MediaRef.inline_record``:
topic, partition, offset); the media stage reads the record back here and decodes the base64
(``streams.media.logic.inline_base64``). Why not carry the base64 in the event when it fits
wa.messages' record limit (4 MiB, 1 MiB on many hosted clusters)?

- wa.messages is kept forever and read by every consumer (projector, embed, media): each
  would fetch and decode megabytes to use none of them, and the projector would store them
  in ``chat_messages.raw_event``; wa.raw already holds the same bytes, forever, once.
- Media above the limit would still need this path, so "small enough" would only add a
  second way with its own edge (an event that fits alone but not beside its raw part).
- Reading back costs one fetch per inline media, only in the media stage, and stays
  correct for replays and `msgmem dlq retry` (the coordinates never change).

``RawRecords`` is the port; ``KafkaRawRecords`` reads with one group-less consumer, opened on
first use (a worker that never sees inline media never connects) and shared under a lock (a
read is assign, seek, fetch). Tests use ``tests.fakes.raw_records.FakeRawRecords``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from contracts.messages import RecordRef
from contracts.settings import Settings
from runtime.kafka import standalone_consumer
from runtime.errors import TransientError


class RawRecords(Protocol):
    async def read(self, where: RecordRef) -> bytes | None:
        """The value of the record at ``where``; None when the log no longer (or never) had it.
        Raises ``TransientError`` when the broker does not answer in time."""

    async def aclose(self) -> None:
        """Release the client, if one was opened."""


class KafkaRawRecords:
    def __init__(self, settings: Settings, *, timeout_seconds: float = 10.0) -> None:
        self._settings = settings
        self._timeout = timeout_seconds
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def read(self, where: RecordRef) -> bytes | None:
        async with self._lock:
            try:
                return await asyncio.wait_for(self._read(where), self._timeout)
            except (TimeoutError, KafkaError) as exc:
                raise TransientError(f"reading {where.topic}[{where.partition}]@{where.offset}: {type(exc).__name__}") from exc

    async def _read(self, where: RecordRef) -> bytes | None:
        if self._consumer is None:
            self._consumer = await standalone_consumer(self._settings)
        consumer = self._consumer
        tp = TopicPartition(where.topic, where.partition)
        if consumer.assignment() != {tp}:
            consumer.assign([tp])
        first = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not first <= where.offset < end:
            return None  # removed by retention, or coordinates from another log
        consumer.seek(tp, where.offset)
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
            for record in batch.get(tp, []):
                if record.offset == where.offset:
                    return record.value
                if record.offset > where.offset:
                    return None  # compacted away, or a transaction marker's offset
        raise TimeoutError

    async def aclose(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
