"""What the console's pipeline page shows and does, as a protocol: the recall service reads
Postgres only, so the pipeline's lags and dead letters (Kafka, the stages) come from whoever
composes the service. ``msgmem.readside`` passes one built on ``msgmem.status.collect`` and
``msgmem.dlq``; without one (``python -m projections.recall``) the page says it is not wired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Lag:
    stage: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int


@dataclass(frozen=True)
class DeadLetter:
    id: str
    stage: str
    state: str  # open, retried, resolved
    error_type: str
    error: str  # types and field paths only (contracts/errors.py), never message text
    failed_at: datetime
    failures: int
    retried_by: str | None
    retried_at: datetime | None


@dataclass(frozen=True)
class PipelineView:
    lags: list[Lag]
    letters: list[DeadLetter]
    problem: str | None = None  # what could not be read (the error's type), shown instead

    @property
    def open_letters(self) -> int:
        return sum(1 for x in self.letters if x.state == "open")


@dataclass(frozen=True)
class RetryOutcome:
    ok: bool
    detail: str


class Pipeline(Protocol):
    async def view(self) -> PipelineView:
        """Every stage's lag by partition and every dead letter in its latest state."""

    async def retry(self, letter_id: str, by: str) -> RetryOutcome | None:
        """Retry one dead letter as `msgmem dlq retry` does; None when no such letter is open."""
