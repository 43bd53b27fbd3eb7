"""What the console's pipeline page shows and does, as a protocol: the recall service reads
Postgres only, so the pipeline's lags, rates and dead letters (Kafka, the stages), the retention
policies' next sweep and the privacy requests applied come from whoever composes the service. ``msgmem.readside`` passes one built on ``msgmem.status.collect`` and
``msgmem.dlq``; without one (``python -m projections.recall``) the page says it is not wired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
class Policy:
    """A retention policy and what its next sweep would do, in words (``msgmem status``'s line)."""

    name: str
    summary: str


@dataclass(frozen=True)
class Erasure:
    """One applied privacy request: no personal data (the subject is a hash, not shown)."""

    erasure_id: str
    subject_kind: str  # chat or phone
    requested_at: datetime
    completed_at: datetime
    chats: int
    rows: int  # rows removed, every table
    files: int  # files removed, every storage


@dataclass(frozen=True)
class PipelineView:
    lags: list[Lag]
    letters: list[DeadLetter]
    problem: str | None = None  # what could not be read (the error's type), shown instead
    #: records consumed per second by each stage since the previous view (none on the first)
    rates: dict[str, float] = field(default_factory=dict)
    retention: list[Policy] = field(default_factory=list)
    erasures: list[Erasure] = field(default_factory=list)

    @property
    def open_letters(self) -> int:
        return sum(1 for x in self.letters if x.state == "open")


@dataclass(frozen=True)
class RetryOutcome:
    ok: bool
    detail: str


def consumption_rates(before: tuple[float, dict[str, int]] | None, now: tuple[float, dict[str, int]]
                      ) -> dict[str, float]:  # fmt: skip
    """Records per second each stage consumed between two views: (monotonic time, committed
    offsets summed per stage) then and now. A stage absent from either, or a sum that went
    back (a group reset), gets no rate."""
    if before is None or now[0] <= before[0]:
        return {}
    seconds = now[0] - before[0]
    return {stage: (total - before[1][stage]) / seconds for stage, total in now[1].items()
            if stage in before[1] and total >= before[1][stage]}  # fmt: skip


class Pipeline(Protocol):
    async def view(self) -> PipelineView:
        """Every stage's lag by partition and every dead letter in its latest state."""

    async def retry(self, letter_id: str, by: str) -> RetryOutcome | None:
        """Retry one dead letter as `msgmem dlq retry` does; None when no such letter is open."""
