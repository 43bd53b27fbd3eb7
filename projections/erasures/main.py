"""Composition root of the erasures projector: ``python -m projections.erasures``.

Reads wa.erasures in the consumer group KAFKA_GROUP_PREFIX + ``erasures-projector`` and, per
``ErasureRequested``, removes every row about the subject from every projected table, its media
objects from MEDIA_STORAGE (local or Supabase) when no other chat uses them, and the AI results
cached only for those files; then writes the ``erasures`` row (counts, no personal data) with its
offsets under the projection ``erasures``. `msgmem erase` and POST /admin/erasures wait for
that row. One projector does it, not each projector for its own tables, so an erasure is one
transaction and one completion row; the other projectors and the stages only read the ledger
(``erasures``) to leave the subject's past alone when they see it again.

It also reads wa.retention and applies each retention cut-off (MessagesExpired, TextsCleared)
to every table and to storage, recording it in ``retention_cutoffs`` (``projections.retention``):
for the same reasons, one transaction under the same exclusive lock.
"""

from __future__ import annotations

import asyncpg

import orjson

from contracts import erasure, processes, retention
from contracts.envelope import EventDecodeError
from contracts.settings import Settings
from projections.consumer import Projection
from projections.erasures.store import ErasuresWriter, PrivacyEvent
from projections.errors import ProjectionError

_RETENTION_TYPES = frozenset(m.model_fields["type"].default for m in retention.EVENT_MODELS)


def decode(data: bytes) -> PrivacyEvent:
    """Bytes from wa.erasures or wa.retention (their type names are distinct); raises
    ``EventDecodeError`` on poison."""
    try:
        kind = orjson.loads(data).get("type")
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise EventDecodeError("not a JSON object") from exc
    return retention.decode(data) if kind in _RETENTION_TYPES else erasure.decode(data)


async def check_schema(conn: asyncpg.Connection, _settings: Settings) -> None:
    """Fail at start-up, not per batch, when a table is missing."""
    if await conn.fetchval("select to_regclass('erasures')") is None:
        raise ProjectionError("migration 0013 is not applied (no erasures): run `msgmem migrate`")
    if await conn.fetchval("select to_regclass('retention_cutoffs')") is None:
        raise ProjectionError("migration 0016 is not applied (no retention_cutoffs): run `msgmem migrate`")


PROJECTOR: Projection[PrivacyEvent] = Projection(processes.ERASURES_PROJECTOR, decode, ErasuresWriter, check_schema)
