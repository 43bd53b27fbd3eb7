"""Composition root of the dead_letters projector: ``python -m projections.deadletters``.

Reads wa.deadletter in the consumer group KAFKA_GROUP_PREFIX + ``deadletters-projector``
(default ``msgmem-deadletters-projector``) and writes ``dead_letters`` in DATABASE_URL, one
row per dead letter id (open, retried, resolved: ``projections.deadletters.logic``), with its
offsets in projection_offsets under the projection ``dead_letters``. Metrics on
DEADLETTERS_PROJECTOR_METRICS_PORT (0: none).

An event it cannot read is dead-lettered like any projector's, to wa.deadletter itself: that
letter decodes, so it becomes a row of its own (stage ``deadletters_projector``) instead of
looping. Logs ``projector started: dead_letters`` once it owns its partitions. SIGTERM or
SIGINT: the batch in flight finishes and the process exits 0.
"""

from __future__ import annotations

import asyncpg

from contracts import deadletter, processes
from contracts.deadletter import AnyLetterEvent
from contracts.settings import Settings
from projections.consumer import Projection
from projections.deadletters.store import DeadLettersWriter
from projections.errors import ProjectionError


async def check_schema(conn: asyncpg.Connection, _settings: Settings) -> None:
    """Fail at start-up, not per batch, when the table is missing."""
    if await conn.fetchval("select to_regclass('dead_letters')") is None:
        raise ProjectionError("migration 0011 is not applied (no dead_letters): run `msgmem migrate`")


PROJECTOR: Projection[AnyLetterEvent] = Projection(
    processes.DEADLETTERS_PROJECTOR, deadletter.decode, lambda _settings: DeadLettersWriter(), check_schema
)
