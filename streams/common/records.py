"""Plain values passed between a stage's logic and its I/O, free of Faust and aiokafka types."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InputRecord:
    """One consumed record with its log coordinates (for dead letters and ``source_*`` columns)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class Output:
    """One record a stage writes."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default_factory=tuple)
