"""Composition root of the messages projector: ``python -m projections``.

Reads wa.messages in the consumer group PROJECTOR_GROUP (default ``msgmem-projector``) and
writes chats and chat_messages in DATABASE_URL. Configuration comes from the environment
through ``contracts.settings.Settings``: KAFKA_BOOTSTRAP_SERVERS (and the Kafka
security settings), DATABASE_URL, PROJECTOR_BATCH_SIZE, PROJECTOR_BATCH_TIMEOUT_MS,
DELETED_MESSAGES (keep | redact), USERS_TABLE, PROJECTOR_METRICS_PORT (0: none), LOG_LEVEL.

Logs ``projector started: chat_messages`` once it owns its partitions and has moved them to
the offsets stored in Postgres (the readiness line). SIGTERM or SIGINT: the batch in flight
finishes, the consumer leaves the group, the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from contracts.messages import TOPIC, MessageEvent, decode_event
from contracts.settings import Settings
from msgmem.kafka import make_consumer, make_producer
from projections.batch import BatchApplier, RetryPolicy
from projections.consumer import Projector
from projections.deadletters import KafkaDeadLetters
from projections.errors import ProjectionError
from projections.messages.store import PROJECTION, MessagesWriter, check_users_table
from projections.metrics import MetricsServer, ProjectorMetrics
from projections.postgres import PostgresProjectionStore

log = logging.getLogger(__name__)

STAGE = "projector"
DEFAULT_GROUP = "msgmem-projector"


@dataclass
class Running:
    projector: Projector
    task: asyncio.Task[None]
    metrics: ProjectorMetrics
    metrics_port: int | None


@asynccontextmanager
async def messages_projector(
    settings: Settings, *, group: str = DEFAULT_GROUP, metrics_port: int | None = None,
    policy: RetryPolicy | None = None,
) -> AsyncIterator[Running]:  # fmt: skip
    """Build the projector's adapters, run it as a task, and tear everything down on exit.

    ``metrics_port``: None for no endpoint, 0 for a free port (tests), else that port.
    """
    await _check_schema(settings)
    metrics = ProjectorMetrics(PROJECTION)
    server = MetricsServer(metrics.registry, metrics_port) if metrics_port is not None else None
    bound = server.start() if server else None
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=2, statement_cache_size=settings.statement_cache_size
    )
    producer = make_producer(settings)
    try:
        await producer.start()
        writer = MessagesWriter(redact_deleted=settings.deleted_messages == "redact", users_table=settings.users_table)
        store: PostgresProjectionStore[MessageEvent] = PostgresProjectionStore(pool, PROJECTION, writer)
        applier = BatchApplier(stage=STAGE, decode=decode_event, store=store,
                               dead_letters=KafkaDeadLetters(producer), metrics=metrics, policy=policy)  # fmt: skip
        projector = Projector(
            name=PROJECTION, consumer=make_consumer(settings, group_id=group), topics=[TOPIC], store=store,
            applier=applier, metrics=metrics, batch_size=settings.projector_batch_size,
            batch_timeout_ms=settings.projector_batch_timeout_ms,
        )  # fmt: skip
        task = asyncio.create_task(projector.run(), name=f"projector-{group}")
        try:
            yield Running(projector, task, metrics, bound)
        finally:
            projector.stop()
            await task
    finally:
        await producer.stop()
        await pool.close()
        if server:
            server.stop()


async def _check_schema(settings: Settings) -> None:
    """Fail at start-up, not per batch, when the schema or USERS_TABLE is not what the SQL needs."""
    conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
    try:
        if await conn.fetchval("select to_regclass('chat_message_pending')") is None:
            raise ProjectionError("migration 0002 is not applied (no chat_message_pending): run `msgmem migrate`")
        if settings.users_table:
            await check_users_table(conn, settings.users_table)
    finally:
        await conn.close()


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = settings.projector_metrics_port or None
    async with messages_projector(settings, group=settings.projector_group, metrics_port=port) as running:
        log.info("consuming %s as group %s%s", TOPIC, settings.projector_group,
                 f", metrics on :{running.metrics_port}" if port else "")  # fmt: skip
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, running.task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    log.info("projector stopped")


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
    except ImportError:  # optional: a faster event loop where installed
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))
