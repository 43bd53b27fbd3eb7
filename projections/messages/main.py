"""Composition root of the messages projector: ``python -m projections.messages``.

Reads wa.messages in the consumer group KAFKA_GROUP_PREFIX + ``projector`` (default
``msgmem-projector``) and writes chats, chat_messages and chat_message_versions in
DATABASE_URL. Configuration comes from the environment through
``contracts.settings.Settings``: KAFKA_BOOTSTRAP_SERVERS (and the Kafka security settings),
DATABASE_URL, PROJECTOR_BATCH_SIZE, PROJECTOR_BATCH_TIMEOUT_MS, DELETED_MESSAGES (keep |
redact), USERS_TABLE, PROJECTOR_METRICS_PORT (0: none), LOG_LEVEL.

Logs ``projector started: chat_messages`` once it owns its partitions and has moved them to
the offsets stored in Postgres (the readiness line). SIGTERM or SIGINT: the batch in flight
finishes, the consumer leaves the group, the process exits 0.
"""

from __future__ import annotations

import asyncpg

from contracts import processes
from contracts.messages import MessageEvent, decode_event
from contracts.settings import Settings
from projections.consumer import Projection
from projections.errors import ProjectionError
from projections.messages.store import MessagesWriter, check_users_table


def writer(settings: Settings) -> MessagesWriter:
    return MessagesWriter(redact_deleted=settings.deleted_messages == "redact", users_table=settings.users_table)


async def check_schema(conn: asyncpg.Connection, settings: Settings) -> None:
    """Fail at start-up, not per batch, when the schema or USERS_TABLE is not what the SQL needs."""
    if await conn.fetchval("select to_regclass('chat_message_pending')") is None:
        raise ProjectionError("migration 0002 is not applied (no chat_message_pending): run `msgmem migrate`")
    if await conn.fetchval("select to_regclass('chat_message_versions')") is None:
        raise ProjectionError("migration 0008 is not applied (no chat_message_versions): run `msgmem migrate`")
    if settings.users_table:
        await check_users_table(conn, settings.users_table)


PROJECTOR: Projection[MessageEvent] = Projection(processes.PROJECTOR, decode_event, writer, check_schema)
