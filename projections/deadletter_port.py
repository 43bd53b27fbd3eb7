"""The dead-letter port every projector writes its poison through, and its Kafka adapter (the
projection that reads wa.deadletter back into a table is ``projections.deadletters``).

A letter is acknowledged by the broker before the transaction that moves the stored offset
past its record commits, so a crash in between repeats the letter (same
``dead_letter_id``) instead of losing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer

from contracts.deadletter import TOPIC, DeadLettered
from contracts.topics import limit_of, record_size


class DeadLetters(Protocol):
    async def publish(self, letters: Sequence[DeadLettered]) -> None:
        """Return once every letter is durably on wa.deadletter; raise otherwise."""
        ...


class KafkaDeadLetters:
    """A letter too large for the topic goes without its value (flagged; ``msgmem dlq retry``
    reads the record again from its coordinates)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str = TOPIC, *, cluster_cap: int | None = None) -> None:
        self._producer = producer
        self._topic = topic
        self._limit = limit_of(topic, cluster_cap)

    async def publish(self, letters: Sequence[DeadLettered]) -> None:
        if not letters:
            return
        futures = []
        for letter in letters:
            value, key = letter.encode(), letter.stage.encode()
            if record_size(key, value) > self._limit:
                value = letter.without_value().encode()
            futures.append(await self._producer.send(self._topic, value, key=key))
        await asyncio.gather(*futures)

