"""The dead-letter port and its Kafka adapter.

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


class DeadLetters(Protocol):
    async def publish(self, letters: Sequence[DeadLettered]) -> None:
        """Return once every letter is durably on wa.deadletter; raise otherwise."""
        ...


class KafkaDeadLetters:
    def __init__(self, producer: AIOKafkaProducer, topic: str = TOPIC) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(self, letters: Sequence[DeadLettered]) -> None:
        if not letters:
            return
        futures = [
            await self._producer.send(self._topic, letter.encode(), key=letter.stage.encode()) for letter in letters
        ]
        await asyncio.gather(*futures)

