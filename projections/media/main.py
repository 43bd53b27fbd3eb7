"""Composition root of the media projector: ``python -m projections.media``.

Reads wa.media, wa.transcripts, wa.captions and wa.documents in the consumer group
KAFKA_GROUP_PREFIX + ``media-projector`` (default ``msgmem-media-projector``) and writes chat_media (and the derived text of chat_messages) in
DATABASE_URL; its offsets live in projection_offsets under the projection ``chat_media``.
Configuration comes from the environment through ``contracts.settings.Settings``:
KAFKA_BOOTSTRAP_SERVERS (and the Kafka security settings), DATABASE_URL,
PROJECTOR_BATCH_SIZE, PROJECTOR_BATCH_TIMEOUT_MS, DELETED_MESSAGES (keep | redact: set it
as for the messages projector), LOG_LEVEL.

Logs ``projector started: chat_media`` once it owns its partitions and has moved them to
the offsets stored in Postgres (the readiness line). SIGTERM or SIGINT: the batch in flight
finishes, the consumer leaves the group, the process exits 0.
"""

from __future__ import annotations

import asyncpg

from contracts import processes
from contracts.settings import Settings
from projections.consumer import Projection
from projections.errors import ProjectionError
from projections.media.logic import MediaProjectionEvent, decode_event
from projections.media.store import MediaWriter

def writer(settings: Settings) -> MediaWriter:
    return MediaWriter(redact_deleted=settings.deleted_messages == "redact")


async def check_schema(conn: asyncpg.Connection, _settings: Settings) -> None:
    """Fail at start-up, not per batch, when the columns the SQL needs are missing."""
    found = await conn.fetchval(
        "select count(*) from information_schema.columns where table_schema = any(current_schemas(false))"
        " and (table_name, column_name) in"
        " (('chat_media', 'transcript_at'), ('chat_messages', 'caption_generated'))"
    )  # fmt: skip
    if found != 2:
        raise ProjectionError("migration 0005 is not applied (chat_media.transcript_at): run `msgmem migrate`")


PROJECTOR: Projection[MediaProjectionEvent] = Projection(processes.MEDIA_PROJECTOR, decode_event, writer, check_schema)
