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
    #: Past its chat's MESSAGE_RETENTION_DAYS cut-off, kept for what it says about its chat only
    #: (``screened`` with ``keep_expired``: the messages projection's chats rows).
    expired: bool = False

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


def screened(items: Sequence[Item[E]], ledger: Any, *, keep_expired: bool = False) -> list[Item[E]]:
    """``items`` as the erasure ledger (``contracts.erasure.Ledger``) lets a projection apply
    them (``Ledger.screen``): those it hides left out, those whose derived text a retention
    cut-off cleared with it stripped. With ``keep_expired``, an item hidden by a retention
    cut-off alone (not erased) stays, marked ``expired``: the messages projection still applies
    what it says about its chat (activity times, names, consent), which the sweep leaves in
    place, so a rebuild gives the chats rows the live projector kept."""
    out: list[Item[E]] = []
    for item in items:
        event = ledger.screen(item.event)
        if event is item.event:
            out.append(item)
        elif event is not None:
            out.append(replace(item, event=event))
        elif keep_expired and not ledger.erases_event(item.event):
            out.append(replace(item, expired=True))
    return out
