"""The media projection's upsert of ``chat_media``: one bulk statement per batch, from ``unnest``.

``MERGE`` is the SQL twin of ``projections.media.rows.MediaRow.absorb`` (``c`` the stored
row, ``excluded`` the batch's folded row); keep the two in step. Every expression reads the
old row, as Postgres evaluates a SET list against it.
"""

from __future__ import annotations

from projections.media.rows import DESCRIPTIVE, OBJECT, COLUMNS, TEXTS

_C = 'collate "C"'  # compare text by code point, as Python does
_TYPES = {
    "duration_seconds": "double precision", "page_count": "integer", "size_bytes": "bigint",
    "stored_at": "timestamptz", "expires_at": "timestamptz", "failed_at": "timestamptz",
    "transcript_at": "timestamptz", "caption_at": "timestamptz", "extracted_at": "timestamptz",
    "enrichment_at": "timestamptz",
}  # fmt: skip
MEDIA_COLUMNS: list[tuple[str, str]] = [(name, _TYPES.get(name, "text")) for name in COLUMNS]

_STORED_WINS = "(excluded.stored_at is not null and (c.stored_at is null or excluded.stored_at > c.stored_at))"
_HAD_STORE = "(c.stored_at is not null)"
_EXPIRES = ("(excluded.status = 'expired' and excluded.stored_at is not null"
            " and (c.stored_at is null or excluded.stored_at >= c.stored_at))")  # fmt: skip


def _key(t: str, *parts: str) -> str:
    return "(" + ", ".join(p.format(t=t) for p in parts) + ")"


def _newer(at: str, *rest: str) -> str:
    """``excluded`` wins the group stamped by ``at``: later ``at``, then the greater ``rest``."""
    parts = (f"{{t}}.{at}", *rest)
    return f"(excluded.{at} is not null and (c.{at} is null or {_key('excluded', *parts)} > {_key('c', *parts)}))"


def _text(column: str) -> str:
    return f"coalesce({{t}}.{column}, '') {_C}"


_FAILURE_WINS = _newer("failed_at", _text("error"))
_ENRICHMENT_WINS = (
    "(excluded.enrichment_status is not null and (c.enrichment_status is null or "
    + " > ".join(
        _key(t, f"case {{t}}.enrichment_status when 'done' then 2 else 1 end", "{t}.enrichment_at",
             f"{{t}}.enrichment_status {_C}", _text("enrichment_error"))  # fmt: skip
        for t in ("excluded", "c")
    )
    + "))"
)


def _merge() -> str:
    extraction_wins = _newer("extracted_at", _text("extracted_text"))
    sets = [
        f"status = case when {_EXPIRES} then 'expired' when {_STORED_WINS} then 'stored'"
        f" when not {_HAD_STORE} and {_FAILURE_WINS} then excluded.status else c.status end",
        f"error = case when {_STORED_WINS} or {_HAD_STORE} then null when {_FAILURE_WINS} then excluded.error"
        " else c.error end",
        "failed_at = greatest(c.failed_at, excluded.failed_at)",
        f"page_count = case when {extraction_wins} then excluded.page_count when c.extracted_at is not null"
        f" then c.page_count when {_STORED_WINS} then coalesce(excluded.page_count, c.page_count)"
        " else coalesce(c.page_count, excluded.page_count) end",
    ]
    sets += [f"{d} = case when {_STORED_WINS} then coalesce(excluded.{d}, c.{d}) else coalesce(c.{d}, excluded.{d}) end"
             for d in DESCRIPTIVE]  # fmt: skip
    sets += [f"{o} = case when {_STORED_WINS} then excluded.{o} when {_HAD_STORE} then c.{o}"
             f" else coalesce(c.{o}, excluded.{o}) end" for o in OBJECT]  # fmt: skip
    for text, model, at in TEXTS:
        wins = _newer(at, _text(text))
        sets += [f"{n} = case when {wins} then excluded.{n} else c.{n} end" for n in (text, model, at)]
    sets += [f"{n} = case when {_ENRICHMENT_WINS} then excluded.{n} else c.{n} end"
             for n in ("enrichment_status", "enrichment_error", "enrichment_at")]  # fmt: skip
    sets.append("updated_at = now()")
    return ",\n    ".join(sets)


MERGE = _merge()
_NAMES = [name for name, _ in MEDIA_COLUMNS]
_ARRAYS = ", ".join(f"${n + 1}::{kind}[]" for n, (_, kind) in enumerate(MEDIA_COLUMNS))
UPSERT_MEDIA = f"""
insert into chat_media as c ({", ".join(_NAMES)})
select {", ".join(f"u.{n}" for n in _NAMES)}
from unnest({_ARRAYS}) as u({", ".join(_NAMES)})
on conflict (id) do update set
    {MERGE}
"""
