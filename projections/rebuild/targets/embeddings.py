"""The embeddings projection as the rebuild sees it: wa.embeddings -> message_embeddings and its
two state tables, with the live embeddings projector's decode, fold and writer.

The vectors are on the log (base64 float32 in each ``ChunksReplaced``), so a rebuild makes no
model call. Its connections take the vector codec, as the live projector's pool does. The
HNSW index is built once after the load, like every plain index (``projections.rebuild.plan``).
"""

from __future__ import annotations

import asyncpg

from contracts.settings import Settings
from projections.embeddings.logic import Ops, fold
from projections.embeddings.main import PROJECTOR
from projections.embeddings.store import TABLES, EmbeddingsWriter
from projections.rebuild.targets.base import RebuildTarget


def embeddings_target(_settings: Settings) -> RebuildTarget:
    writer = EmbeddingsWriter()

    async def write(conn: asyncpg.Connection, ops: Ops) -> None:
        await writer.write_ops(conn, ops)

    return RebuildTarget(
        key="embeddings", name=PROJECTOR.name, topics=PROJECTOR.process.inputs, tables=TABLES,
        clock_columns=frozenset({"created_at", "updated_at"}), decode=PROJECTOR.decode, prepare=fold, write=write,
        init=PROJECTOR.pool_init,
    )  # fmt: skip
