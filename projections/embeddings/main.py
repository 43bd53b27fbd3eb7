"""Composition root of the embeddings projector: ``python -m projections.embeddings``.

Reads wa.embeddings in the consumer group EMBEDDINGS_PROJECTOR_GROUP (default
``msgmem-embeddings-projector``) and writes message_embeddings (plus
message_embedding_sources and message_embedding_deletions) in DATABASE_URL, with the same
machinery as the messages projector: batches of PROJECTOR_BATCH_SIZE events (or what came
in PROJECTOR_BATCH_TIMEOUT_MS), one transaction per batch holding the rows and the
offsets (``projection_offsets`` under the projection name ``message_embeddings``), poison
bisected to wa.deadletter (stage ``embeddings-projector``). Metrics on
EMBEDDINGS_PROJECTOR_METRICS_PORT (0: none).

Refuses to start when migration 0006 is missing or EMBEDDINGS_DIMENSIONS differs from the
``message_embeddings.embedding`` column's. Logs ``projector started: message_embeddings``
once it owns its partitions and has moved them to the stored offsets. SIGTERM or SIGINT:
the batch in flight finishes and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import asyncpg

from contracts import embeddings
from contracts.embeddings import EmbeddingEvent
from contracts.settings import Settings
from runtime.kafka import make_consumer, make_producer
from runtime.logging_setup import configure_logging
from projections.batch import BatchApplier, RetryPolicy
from projections.consumer import Projector
from projections.deadletters import KafkaDeadLetters
from projections.embeddings.store import PROJECTION, EmbeddingsWriter
from projections.embeddings.vectors import register_vector
from projections.errors import ProjectionError
from projections.metrics import MetricsServer, ProjectorMetrics
from projections.postgres import PostgresProjectionStore

log = logging.getLogger(__name__)

STAGE = "embeddings-projector"


@dataclass
class EmbeddingsProjector:
    projector: Projector
    task: asyncio.Task[None]
    metrics: ProjectorMetrics
    metrics_port: int | None


async def check_schema(conn: asyncpg.Connection, dimensions: int) -> None:
    """Fail at start-up, not per batch, when the table cannot take this configuration."""
    if await conn.fetchval("select to_regclass('message_embedding_sources')") is None:
        raise ProjectionError("migration 0006 is not applied (no message_embedding_sources): run `msgmem migrate`")
    column = await conn.fetchval(
        "select atttypmod from pg_attribute where attrelid = 'message_embeddings'::regclass and attname = 'embedding'"
    )
    if column != dimensions:
        raise ProjectionError(
            f"message_embeddings.embedding holds {column} dimensions but EMBEDDINGS_DIMENSIONS is {dimensions}: "
            "a new size needs a migration (and the HNSW index rebuilt) and a re-embed"
        )


@asynccontextmanager
async def embeddings_projector(
    settings: Settings, *, group: str | None = None, metrics_port: int | None = None, policy: RetryPolicy | None = None,
) -> AsyncIterator[EmbeddingsProjector]:  # fmt: skip
    """Run the projector as a task while inside; ``metrics_port`` None: no endpoint, 0: any free port."""
    async with AsyncExitStack() as resources:
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=1, max_size=2, statement_cache_size=settings.statement_cache_size,
            init=register_vector,
        )  # fmt: skip
        resources.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            await check_schema(conn, settings.embeddings_dimensions)
        metrics = ProjectorMetrics(PROJECTION)
        bound = None
        if metrics_port is not None:
            server = MetricsServer(metrics.registry, metrics_port, settings.projector_metrics_host)
            bound = server.start()
            resources.callback(server.stop)
        producer = make_producer(settings)
        await producer.start()
        resources.push_async_callback(producer.stop)
        store: PostgresProjectionStore[EmbeddingEvent] = PostgresProjectionStore(pool, PROJECTION, EmbeddingsWriter())
        projector = Projector(
            name=PROJECTION, consumer=make_consumer(settings, group_id=group or settings.embeddings_projector_group),
            topics=[embeddings.TOPIC], store=store, metrics=metrics, batch_size=settings.projector_batch_size,
            applier=BatchApplier(stage=STAGE, decode=embeddings.decode_event, store=store,
                                 dead_letters=KafkaDeadLetters(producer, cluster_cap=settings.kafka_max_message_bytes),
                                 metrics=metrics, policy=policy),
            batch_timeout_ms=settings.projector_batch_timeout_ms,
        )  # fmt: skip
        task = asyncio.create_task(projector.run(), name=f"{PROJECTION}-projector")
        try:
            yield EmbeddingsProjector(projector, task, metrics, bound)
        finally:
            projector.stop()
            await task


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = settings.embeddings_projector_metrics_port or None
    async with embeddings_projector(settings, metrics_port=port) as running:
        log.info("consuming %s as group %s", embeddings.TOPIC, settings.embeddings_projector_group)
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait({waiting, running.task}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
    log.info("embeddings projector stopped")


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
