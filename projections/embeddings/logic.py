"""The embeddings projection's pure logic. No I/O.

``fold`` reduces a batch of wa.embeddings events to at most one replacement per (message,
source), the newest by ``version_at`` (a tie goes to the later record), and one removal
per message; a message removed in the batch keeps none of its replacements.

``layout`` decides the rows. The primary key is (message_id, chunk_index), with
chunk_index numbering all of a message's chunks: text, caption, transcript, document,
each in its own order. When a source is replaced its rows go and its new chunks come in
at their place in that order; the message's other rows keep their chunk_index when it
does not change (the common case: a typed text is first, and an edit rarely changes its
chunk count) and are renumbered when it does. Postgres checks a non-deferrable primary
key row by row, so moving rows to indexes still held by others would fail half way: moved
rows are first parked at negative indexes, the new rows inserted, then the parked rows
put in place. Every statement touches only rows whose key or count really changes, so an
unchanged vector is never rewritten (a rewritten row is a new HNSW graph entry).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from contracts.embeddings import SOURCES, ChunksReplaced, EmbeddedChunk, EmbeddingEvent, EmbeddingsRemoved
from projections.items import Item

RANK = {source: n for n, source in enumerate(SOURCES)}


@dataclass
class Ops:
    removals: dict[str, EmbeddingsRemoved] = field(default_factory=dict)
    replacements: dict[tuple[str, str], ChunksReplaced] = field(default_factory=dict)


def fold(items: Sequence[Item[EmbeddingEvent]]) -> Ops:
    ops = Ops()
    for item in items:
        event = item.event
        if isinstance(event, ChunksReplaced):
            key = (event.message_id, event.source)
            current = ops.replacements.get(key)
            if current is None or event.version_at >= current.version_at:
                ops.replacements[key] = event
        elif isinstance(event, EmbeddingsRemoved):
            current_removal = ops.removals.get(event.message_id)
            if current_removal is None or event.deleted_at < current_removal.deleted_at:
                ops.removals[event.message_id] = event
        # EmbeddingSkipped / EmbeddingFailed: a record of why there are no vectors; no rows.
    for key in [k for k in ops.replacements if k[0] in ops.removals]:
        del ops.replacements[key]
    return ops


@dataclass(frozen=True)
class StoredRow:
    message_id: str
    source: str
    chunk_index: int
    chunk_count: int


@dataclass(frozen=True)
class NewRow:
    event: ChunksReplaced
    chunk: EmbeddedChunk
    chunk_index: int
    chunk_count: int


@dataclass
class Plan:
    clear: list[tuple[str, str]] = field(default_factory=list)  # (message, source) whose rows go
    park: list[tuple[str, int, int]] = field(default_factory=list)  # (message, index, parked index)
    insert: list[NewRow] = field(default_factory=list)
    place: list[tuple[str, int, int, int]] = field(default_factory=list)  # (message, parked, index, count)
    recount: list[tuple[str, int, int]] = field(default_factory=list)  # (message, index, count)


def layout(stored: Iterable[StoredRow], winners: Sequence[ChunksReplaced]) -> Plan:
    """The statements that turn the ``stored`` rows of the winners' messages into the new layout."""
    plan = Plan()
    by_message: dict[str, list[StoredRow]] = {}
    for row in stored:
        by_message.setdefault(row.message_id, []).append(row)
    replacing: dict[str, dict[str, ChunksReplaced]] = {}
    for event in winners:
        replacing.setdefault(event.message_id, {})[event.source] = event
        plan.clear.append((event.message_id, event.source))
    for message_id, sources in replacing.items():
        kept = [r for r in by_message.get(message_id, []) if r.source not in sources]
        entries: list[tuple[tuple[int, int], StoredRow | tuple[ChunksReplaced, EmbeddedChunk]]] = [
            ((RANK[r.source], r.chunk_index), r) for r in kept
        ]
        entries += [((RANK[e.source], c.index), (e, c)) for e in sources.values() for c in e.chunks]
        entries.sort(key=lambda entry: entry[0])
        total = len(entries)
        for index, (_, entry) in enumerate(entries):
            if isinstance(entry, StoredRow):
                if entry.chunk_index != index:
                    parked = -1 - index
                    plan.park.append((message_id, entry.chunk_index, parked))
                    plan.place.append((message_id, parked, index, total))
                elif entry.chunk_count != total:
                    plan.recount.append((message_id, index, total))
            else:
                event, chunk = entry
                plan.insert.append(NewRow(event, chunk, index, total))
    return plan
