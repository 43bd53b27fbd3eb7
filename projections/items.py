"""A decoded record: the event plus where it came from and the bytes it came as.

The bytes travel with the event because a projection stores them (``raw_event``) and a
dead letter must carry the input exactly as read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from aiokafka import TopicPartition

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Item(Generic[E]):
    event: E
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


def next_offsets(coordinates: Iterable[tuple[str, int, int]]) -> dict[TopicPartition, int]:
    """Per partition, the offset after the last one seen: what ``projection_offsets`` stores."""
    out: dict[TopicPartition, int] = {}
    for topic, partition, offset in coordinates:
        tp = TopicPartition(topic, partition)
        if offset + 1 > out.get(tp, -1):
            out[tp] = offset + 1
    return out


def screened(items: Sequence[Item[E]], screen: Callable[[Any], Any]) -> list[Item[E]]:
    """``items`` as the erasure ledger lets a projection apply them (``Ledger.screen``): those
    it hides left out, those whose derived text a retention cut-off cleared with it stripped."""
    out: list[Item[E]] = []
    for item in items:
        event = screen(item.event)
        if event is item.event:
            out.append(item)
        elif event is not None:
            out.append(replace(item, event=event))
    return out
