"""The port a stage writes through, its Kafka adapter and a recording fake."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer

from contracts.settings import Settings
from msgmem.kafka import make_producer
from streams.common.records import Output


class OutputWriter(Protocol):
    async def write(self, outputs: Sequence[Output]) -> None:
        """Return once every output is acknowledged by the broker."""


class KafkaOutputs:
    """Writes with the project's durable producer (acks=all, idempotent).

    ``write`` enqueues a whole batch first and then waits for all acknowledgements, so
    records share broker round trips while nothing is acked upstream before it is durable.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    @classmethod
    async def start(cls, settings: Settings) -> "KafkaOutputs":
        producer = make_producer(settings)
        await producer.start()
        return cls(producer)

    async def write(self, outputs: Sequence[Output]) -> None:
        pending: list[Awaitable[object]] = []
        for out in outputs:
            pending.append(await self._producer.send(out.topic, out.value, key=out.key, headers=list(out.headers)))
        if pending:
            await asyncio.gather(*pending)

    async def stop(self) -> None:
        await self._producer.stop()


class RecordingOutputs:
    """A fake that keeps what it was asked to write."""

    def __init__(self) -> None:
        self.written: list[Output] = []

    async def write(self, outputs: Sequence[Output]) -> None:
        self.written.extend(outputs)
