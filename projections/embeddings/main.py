"""Composition root of the embeddings projector: ``python -m projections.embeddings``.

Reads wa.embeddings in the consumer group KAFKA_GROUP_PREFIX + ``embeddings-projector``
(default ``msgmem-embeddings-projector``) and writes message_embeddings (plus
message_embedding_sources and message_embedding_deletions) in DATABASE_URL, with the same
machinery as the messages projector: batches of PROJECTOR_BATCH_SIZE events (or what came
in PROJECTOR_BATCH_TIMEOUT_MS), one transaction per batch holding the rows and the
offsets (``projection_offsets`` under the projection name ``message_embeddings``), poison
bisected to wa.deadletter (stage ``embeddings_projector``). Metrics on
EMBEDDINGS_PROJECTOR_METRICS_PORT (0: none).

Refuses to start when migration 0006 is missing or EMBEDDINGS_DIMENSIONS differs from the
``message_embeddings.embedding`` column's. Logs ``projector started: message_embeddings``
once it owns its partitions and has moved them to the stored offsets. SIGTERM or SIGINT:
the batch in flight finishes and the process exits 0.
"""

from __future__ import annotations

import asyncpg

from contracts import embeddings, processes
from contracts.embeddings import EmbeddingEvent
from contracts.settings import Settings
from projections.consumer import Projection
from projections.embeddings.store import EmbeddingsWriter
from projections.embeddings.vectors import register_vector
from projections.errors import ProjectionError


async def check_schema(conn: asyncpg.Connection, settings: Settings) -> None:
    """Fail at start-up, not per batch, when the table cannot take this configuration."""
    dimensions = settings.embeddings_dimensions
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


PROJECTOR: Projection[EmbeddingEvent] = Projection(
    processes.EMBEDDINGS_PROJECTOR, embeddings.decode_event, lambda _settings: EmbeddingsWriter(), check_schema,
    pool_init=register_vector,
)
