"""Fakes of the projector's ports that record what they were asked (no Kafka, no Postgres)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from contracts.deadletter import DeadLettered
from projections.batch import Applied
from projections.errors import OffsetsBehind
from projections.items import Item


class FakeDeadLetters:
    def __init__(self, journal: list[Any] | None = None) -> None:
        self.sent: list[DeadLettered] = []
        self.failures: list[BaseException] = []
        self.journal = journal if journal is not None else []

    async def publish(self, letters: Sequence[DeadLettered]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.extend(letters)
        self.journal.extend(("letter", letter.offset) for letter in letters)


class FakeStore:
    """Keeps applied events and offsets like the Postgres store; ``refuse`` picks poison events,
    ``failures`` raises errors on the next calls."""

    def __init__(self, journal: list[Any] | None = None, refuse: Callable[[Any], BaseException | None] | None = None):
        self.applied: list[Any] = []
        self.offsets: dict[TopicPartition, int] = {}
        self.calls = 0
        self.failures: list[BaseException] = []
        self.refuse = refuse or (lambda event: None)
        self.journal = journal if journal is not None else []

    async def load_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.offsets[tp] for tp in partitions if tp in self.offsets}

    async def apply(
        self, items: Sequence[Item[Any]], offsets: Mapping[TopicPartition, int],
        expected: Mapping[TopicPartition, int] | None = None,
    ) -> Applied:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        behind = {tp: self.offsets[tp] for tp in offsets
                  if expected and tp in expected and tp in self.offsets and self.offsets[tp] < expected[tp]}  # fmt: skip
        if behind:
            raise OffsetsBehind(behind)
        fresh = [i for i in items if i.offset >= self.offsets.get(i.tp, 0)]
        for item in fresh:
            error = self.refuse(item.event)
            if error is not None:
                raise error
        self.applied.extend(i.event for i in fresh)
        for tp, offset in offsets.items():
            self.offsets[tp] = max(self.offsets.get(tp, 0), offset)
        self.journal.append(("commit", dict(offsets)))
        return Applied(len(fresh), len(items) - len(fresh))


def record(value: bytes | None, offset: int, partition: int = 0, topic: str = "wa.messages") -> ConsumerRecord:
    return ConsumerRecord(topic=topic, partition=partition, offset=offset, timestamp=0, timestamp_type=0, key=b"k",
                          value=value, checksum=None, serialized_key_size=1,
                          serialized_value_size=len(value or b""), headers=[("h", b"v")])  # fmt: skip
