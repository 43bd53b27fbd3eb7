"""What an erasure removes, decided without I/O: which chats a subject hash names, which media
objects and cached AI results belonged to those chats alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from contracts.erasure import chat_subjects


def chats_of(subject_hash: str, chats: Iterable[tuple[str, str | None]]) -> list[str]:
    """The chat keys among ``(chat_key, contact_phone)`` pairs that ``subject_hash`` names."""
    return sorted({key for key, phone in chats if subject_hash in chat_subjects(key, phone)})


def exclusive(theirs: Iterable[str | None], others: Iterable[str | None]) -> list[str]:
    """Values (object paths, file hashes) of the erased chats that no other chat uses: content
    is addressed by hash, so one object may back another contact's copy of the same file."""
    return sorted({v for v in theirs if v} - {v for v in others if v})


@dataclass
class Removed:
    """Counts for the erasure row and the receipt: rows per table, objects per storage."""

    tables: dict[str, int] = field(default_factory=dict)
    storage: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, dict[str, int]]:
        return {"tables": dict(self.tables), "storage": dict(self.storage)}
