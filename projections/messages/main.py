"""Composition root of the messages projector: ``python -m projections``.

Reads wa.messages in the consumer group PROJECTOR_GROUP (default ``msgmem-projector``) and
writes chats, chat_messages and chat_message_versions in DATABASE_URL. Configuration comes from the environment
through ``contracts.settings.Settings``: KAFKA_BOOTSTRAP_SERVERS (and the Kafka
security settings), DATABASE_URL, PROJECTOR_BATCH_SIZE, PROJECTOR_BATCH_TIMEOUT_MS,
DELETED_MESSAGES (keep | redact), USERS_TABLE, PROJECTOR_METRICS_PORT (0: none), LOG_LEVEL.

Logs ``projector started: chat_messages`` once it owns its partitions and has moved them to
the offsets stored in Postgres (the readiness line). SIGTERM or SIGINT: the batch in flight
finishes, the consumer leaves the group, the process exits 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from contracts.messages import TOPIC, MessageEvent, decode_event
from contracts.settings import Settings
from projections.batch import RetryPolicy
from projections.consumer import ProjectionSpec, Running, run_process, running_projector, serve
from projections.errors import ProjectionError
from projections.messages.store import PROJECTION, MessagesWriter, check_users_table

__all__ = ["DEFAULT_GROUP", "STAGE", "Running", "main", "messages_projector", "serve_messages"]

STAGE = "projector"
DEFAULT_GROUP = "msgmem-projector"


def spec(settings: Settings) -> ProjectionSpec[MessageEvent]:
    writer = MessagesWriter(redact_deleted=settings.deleted_messages == "redact", users_table=settings.users_table)
    return ProjectionSpec(name=PROJECTION, stage=STAGE, topics=(TOPIC,), decode=decode_event, writer=writer)


@asynccontextmanager
async def messages_projector(
    settings: Settings, *, group: str = DEFAULT_GROUP, metrics_port: int | None = None,
    policy: RetryPolicy | None = None,
) -> AsyncIterator[Running]:  # fmt: skip
    """The messages projector as a task (see ``projections.consumer.running_projector``)."""
    await _check_schema(settings)
    async with running_projector(settings, spec(settings), group=group, metrics_port=metrics_port,
                                 policy=policy) as running:  # fmt: skip
        yield running


async def _check_schema(settings: Settings) -> None:
    """Fail at start-up, not per batch, when the schema or USERS_TABLE is not what the SQL needs."""
    conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
    try:
        if await conn.fetchval("select to_regclass('chat_message_pending')") is None:
            raise ProjectionError("migration 0002 is not applied (no chat_message_pending): run `msgmem migrate`")
        if await conn.fetchval("select to_regclass('chat_message_versions')") is None:
            raise ProjectionError("migration 0008 is not applied (no chat_message_versions): run `msgmem migrate`")
        if settings.users_table:
            await check_users_table(conn, settings.users_table)
    finally:
        await conn.close()


async def serve_messages(settings: Settings) -> None:
    port = settings.projector_metrics_port or None
    running = messages_projector(settings, group=settings.projector_group, metrics_port=port)
    await serve(running, f"{TOPIC} as group {settings.projector_group}")


def main() -> None:
    run_process(serve_messages)
