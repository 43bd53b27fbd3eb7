"""Composition root of the media projector: ``python -m projections.media``.

Reads wa.media, wa.transcripts, wa.captions and wa.documents in the consumer group
``msgmem-media-projector`` and writes chat_media (and the derived text of chat_messages) in
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

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from contracts.settings import Settings
from projections.batch import RetryPolicy
from projections.consumer import ProjectionSpec, Running, run_process, running_projector, serve
from projections.errors import ProjectionError
from projections.media.logic import TOPICS, MediaProjectionEvent, decode_event
from projections.media.store import PROJECTION, MediaWriter

STAGE = "media_projector"
DEFAULT_GROUP = "msgmem-media-projector"


def spec(settings: Settings) -> ProjectionSpec[MediaProjectionEvent]:
    writer = MediaWriter(redact_deleted=settings.deleted_messages == "redact")
    return ProjectionSpec(name=PROJECTION, stage=STAGE, topics=TOPICS, decode=decode_event, writer=writer)


@asynccontextmanager
async def media_projector(
    settings: Settings, *, group: str = DEFAULT_GROUP, metrics_port: int | None = None,
    policy: RetryPolicy | None = None,
) -> AsyncIterator[Running]:  # fmt: skip
    """The media projector as a task (see ``projections.consumer.running_projector``)."""
    await _check_schema(settings)
    async with running_projector(settings, spec(settings), group=group, metrics_port=metrics_port,
                                 policy=policy) as running:  # fmt: skip
        yield running


async def _check_schema(settings: Settings) -> None:
    """Fail at start-up, not per batch, when the columns the SQL needs are missing."""
    conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
    try:
        found = await conn.fetchval(
            "select count(*) from information_schema.columns where table_schema = any(current_schemas(false))"
            " and (table_name, column_name) in"
            " (('chat_media', 'transcript_at'), ('chat_messages', 'caption_generated'))"
        )  # fmt: skip
    finally:
        await conn.close()
    if found != 2:
        raise ProjectionError("migration 0005 is not applied (chat_media.transcript_at): run `msgmem migrate`")


async def serve_media(settings: Settings) -> None:
    group = settings.media_projector_group
    await serve(
        media_projector(settings, group=group, metrics_port=settings.media_projector_metrics_port or None),
        f"{', '.join(TOPICS)} as group {group}",
    )


def main() -> None:
    run_process(serve_media)
