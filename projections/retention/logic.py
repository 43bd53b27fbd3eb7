"""What a retention event removes besides rows, decided without I/O: the media objects and the
cached AI results that the rows it removes (or whose text it clears) held alone.

Objects and cached results are content-addressed, so one may back another message's copy of
the same file (a forward, the same voice note in two chats): an object goes only when no row
kept and still 'stored' uses it, a cached result only when no row kept has that file at all
(its transcript would be paid for again, or its text would outlive the policy).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from projections.erasures.logic import exclusive

STORED = "stored"

MediaRef = tuple[str | None, str | None, str]  # path, sha256, status


def doomed_objects(theirs: Iterable[MediaRef], others: Iterable[MediaRef]) -> list[str]:
    """Object paths of the removed rows that no kept 'stored' row uses (an expired row's
    object is gone already, or kept for a row that is still stored: deleting it is a no-op)."""
    others = list(others)
    return exclusive((path for path, _, _ in theirs), (path for path, _, status in others if status == STORED))


def doomed_results(theirs: Iterable[MediaRef], others: Iterable[MediaRef]) -> list[str]:
    """File hashes whose cached AI results no kept row may need."""
    return exclusive((sha for _, sha, _ in theirs), (sha for _, sha, _ in others))


@dataclass
class Applied:
    """What one retention event changed: rows per table, objects per storage (counts only)."""

    tables: dict[str, int] = field(default_factory=dict)
    storage: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, n: int) -> None:
        if n:
            self.tables[table] = self.tables.get(table, 0) + n
