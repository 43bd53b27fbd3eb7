"""The dead_letters projection's two statements per batch, from ``unnest`` like the others:
``UPSERT_LETTERS`` for changes that hold a letter (a new row, or a letter again), and
``UPDATE_MARKERS`` for changes that hold markers only (their row exists). Both skip a change
whose last event the row has applied already (``applied_offset``)."""

from __future__ import annotations

from projections.deadletters.logic import COLUMNS

_TYPES = {
    "last_offset": "bigint", "attempts": "integer", "failures": "integer", "source_partition": "integer",
    "source_offset": "bigint", "value_omitted": "boolean", "first_seen": "timestamptz", "last_seen": "timestamptz",
    "retried_at": "timestamptz", "resolved_at": "timestamptz", "outputs": "integer",
}  # fmt: skip
#: Every field of a ``LetterChange``, in order: the arrays ``UPSERT_LETTERS`` takes.
LETTER_COLUMNS: list[tuple[str, str]] = [(name, _TYPES.get(name, "text")) for name in COLUMNS]
#: What a change of markers only sets: the arrays ``UPDATE_MARKERS`` takes.
MARKER_COLUMNS: list[tuple[str, str]] = [
    (name, _TYPES.get(name, "text"))
    for name in ("letter_id", "state", "last_offset", "retried_by", "retried_at", "resolved_at", "outputs")
]


def _unnest(columns: list[tuple[str, str]]) -> str:
    arrays = ", ".join(f"${n + 1}::{kind}[]" for n, (_, kind) in enumerate(columns))
    return f"unnest({arrays}) as u({', '.join(name for name, _ in columns)})"


# attempts and failures add up over the letters; first_seen / last_seen widen; who retried
# stays until another retry; a letter again clears the resolution (its change carries null).
UPSERT_LETTERS = f"""
insert into dead_letters as d (
    letter_id, stage, state, error_type, error, attempts, failures, source_topic, source_partition, source_offset,
    part, key, value_omitted, first_seen, last_seen, retried_by, retried_at, resolved_at, outputs, applied_offset
)
select letter_id, stage, state, error_type, error, attempts, failures, source_topic, source_partition, source_offset,
    part, key, value_omitted, first_seen, last_seen, retried_by, retried_at, resolved_at, outputs, last_offset
from {_unnest(LETTER_COLUMNS)}
on conflict (letter_id) do update set
    stage = excluded.stage, state = excluded.state, error_type = excluded.error_type, error = excluded.error,
    attempts = d.attempts + excluded.attempts, failures = d.failures + excluded.failures,
    source_topic = excluded.source_topic, source_partition = excluded.source_partition,
    source_offset = excluded.source_offset, part = excluded.part, key = excluded.key,
    value_omitted = excluded.value_omitted,
    first_seen = least(d.first_seen, excluded.first_seen), last_seen = greatest(d.last_seen, excluded.last_seen),
    retried_by = coalesce(excluded.retried_by, d.retried_by), retried_at = coalesce(excluded.retried_at, d.retried_at),
    resolved_at = excluded.resolved_at, outputs = excluded.outputs,
    applied_offset = excluded.applied_offset, updated_at = now()
where d.applied_offset < excluded.applied_offset
"""

UPDATE_MARKERS = f"""
update dead_letters as d set
    state = u.state,
    retried_by = coalesce(u.retried_by, d.retried_by), retried_at = coalesce(u.retried_at, d.retried_at),
    resolved_at = coalesce(u.resolved_at, d.resolved_at), outputs = coalesce(u.outputs, d.outputs),
    applied_offset = u.last_offset, updated_at = now()
from {_unnest(MARKER_COLUMNS)}
where d.letter_id = u.letter_id and d.applied_offset < u.last_offset
"""
