"""The dead_letters projection's pure logic: a batch of wa.deadletter events -> one change per
letter id, in log order. No I/O.

What each event does to its letter's row (the state is ``contracts.deadletter.state_after``'s):

- ``DeadLettered``: the row's letter fields (stage, error, coordinates, key); state 'open';
  ``attempts`` and ``failures`` grow by this letter's, ``last_seen`` is its ``failed_at``
  (``first_seen`` the first letter's); an earlier resolution no longer holds (``resolved_at``
  cleared). The first letter of an id creates the row; a retry that failed again writes the
  same id, so it reopens the row;
- ``DeadLetterRetried``: state 'retried', ``retried_by`` / ``retried_at`` (a marker from before
  retries were logged carries ``outputs`` and resolves, as below);
- ``DeadLetterResolved``: state 'resolved', ``resolved_at`` and ``outputs``.

A change with ``failures`` 0 holds markers only: its letter came in an earlier batch, and it
updates that row (a marker without any letter changes nothing). ``last_offset`` is the
wa.deadletter offset of the change's last event: a row takes a change only when that is past
the last event the row applied, so a batch applied twice counts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from contracts.deadletter import AnyLetterEvent, DeadLettered, DeadLetterResolved, DeadLetterRetried, LetterState
from contracts.deadletter import state_after
from projections.items import Item


@dataclass(slots=True)
class LetterChange:
    letter_id: str
    stage: str
    state: LetterState
    last_offset: int
    error_type: str | None = None
    error: str | None = None
    attempts: int = 0
    failures: int = 0
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    part: str | None = None
    key: str | None = None
    value_omitted: bool = False
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    retried_by: str | None = None
    retried_at: datetime | None = None
    resolved_at: datetime | None = None
    outputs: int | None = None

    def apply(self, event: AnyLetterEvent, offset: int) -> None:
        """One more event about this letter, later in the log than the ones already applied."""
        self.last_offset = offset
        self.state = state_after(event)
        if isinstance(event, DeadLettered):
            self._letter(event)
        elif isinstance(event, DeadLetterRetried):
            self.retried_by, self.retried_at = event.retried_by, event.retried_at
            if event.outputs is not None:  # schema_version 1: written once the retry went through
                self.resolved_at, self.outputs = event.retried_at, event.outputs
        elif isinstance(event, DeadLetterResolved):
            self.resolved_at, self.outputs = event.resolved_at, event.outputs
        else:  # a new event type in contracts that this projection does not know yet
            raise TypeError(f"dead_letters projection cannot apply {type(event).__name__}")

    def _letter(self, letter: DeadLettered) -> None:
        self.stage, self.error_type, self.error = letter.stage, text(letter.error_type), text(letter.error)
        self.attempts += letter.attempts
        self.failures += 1
        self.source_topic, self.source_partition, self.source_offset = letter.topic, letter.partition, letter.offset
        self.part = text(letter.part) if letter.part is not None else None
        self.key = text(letter.key.decode("utf-8", "replace")) if letter.key is not None else None
        self.value_omitted = letter.value_omitted
        self.first_seen = self.first_seen or letter.failed_at
        self.last_seen = letter.failed_at
        self.resolved_at = self.outputs = None


def fold(items: Sequence[Item[AnyLetterEvent]]) -> list[LetterChange]:
    """Pure: the batch's events per letter id, each letter's in log order (one partition per letter)."""
    changes: dict[str, LetterChange] = {}
    for item in items:
        event = item.event
        change = changes.get(event.dead_letter_id)
        if change is None:
            change = LetterChange(event.dead_letter_id, event.stage, "open", item.offset)
            changes[event.dead_letter_id] = change
        change.apply(event, item.offset)
    return list(changes.values())


def text(value: str) -> str:
    """Postgres text holds no NUL; nothing else is changed."""
    return value.replace("\x00", "")


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LetterChange))
