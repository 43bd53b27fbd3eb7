"""The embeddings projection as the rebuild sees it: wa.embeddings -> message_embeddings and its
two state tables, with the live embeddings projector's decode, fold and writer.

The vectors are on the log (base64 float32 in each ``ChunksReplaced``), so a rebuild makes no
model call. Its connections take the vector codec, as the live projector's pool does. The
HNSW index is built once after the load, like every plain index (``projections.rebuild.plan``),
with the memory its graph needs (``index_memory``).
"""

from __future__ import annotations

import asyncpg

from contracts.settings import Settings
from projections.embeddings.logic import Ops, fold
from projections.embeddings.main import PROJECTOR
from projections.embeddings.store import TABLES, EmbeddingsWriter
from projections.rebuild.targets.base import RebuildTarget


# Bytes an HNSW element takes in memory besides its floats: pgvector's element and neighbour
# lists at m 16 (measured: 8MB held ~10,700 elements of 16 floats, ~1,200 of 1536: ~740).
HNSW_ELEMENT_BYTES = 800
INDEX_MEMORY = """
select count(*) * (4 * (select greatest(atttypmod, 0) from pg_attribute
                        where attrelid = 'message_embeddings'::regclass and attname = 'embedding') + $1)
from message_embeddings
"""


async def index_memory(conn: asyncpg.Connection) -> int:
    """What pgvector's HNSW build keeps in memory for the (shadow) message_embeddings, a tenth spare."""
    return int(await conn.fetchval(INDEX_MEMORY, HNSW_ELEMENT_BYTES)) * 11 // 10


def embeddings_target(_settings: Settings) -> RebuildTarget:
    writer = EmbeddingsWriter()

    async def write(conn: asyncpg.Connection, ops: Ops) -> None:
        await writer.write_ops(conn, ops)

    return RebuildTarget(
        key="embeddings", name=PROJECTOR.name, topics=PROJECTOR.process.inputs, tables=TABLES,
        clock_columns=frozenset({"created_at", "updated_at"}), decode=PROJECTOR.decode, prepare=fold, write=write,
        init=PROJECTOR.pool_init, index_memory=index_memory,
    )  # fmt: skip
