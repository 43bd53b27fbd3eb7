"""The index phase of a rebuild: the plain indexes and foreign keys left out of the load, built
with the memory they need.

Index builds sort (btree) or build a graph (pgvector's HNSW) in ``maintenance_work_mem``. The
rebuild's connections have 256MB (``load.MAINTENANCE_WORK_MEM``): plenty for the btree sorts,
but an HNSW graph outgrows it past ~300,000 small vectors or ~35,000 of 1536 floats, and
pgvector then finishes the build on disk, about 7 times slower (measured here: 100,000
vectors of 16 floats, 271 s in 32MB against 40 s in 1GB). A target says how much its builds
want (``RebuildTarget.index_memory``) and gets it, up to ``cap_mb``; should the graph outgrow
that anyway, pgvector's notice becomes a warning of the report.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from projections.rebuild.load import MAINTENANCE_WORK_MEM
from projections.rebuild.targets import RebuildTarget

DEFAULT_CAP_MB = 2048
_FLOOR_MB = int(MAINTENANCE_WORK_MEM.removesuffix("MB"))


async def build(conn: asyncpg.Connection, target: RebuildTarget, statements: Sequence[str], *,
                cap_mb: int = DEFAULT_CAP_MB) -> list[str]:  # fmt: skip
    """Run ``statements`` (the plan's ``after_load``) on the rebuild's connection; return warnings."""
    wanted = await target.index_memory(conn) if target.index_memory is not None else 0
    memory = memory_mb(wanted, cap_mb)
    warnings: list[str] = []

    def listen(_conn: asyncpg.Connection, message: asyncpg.PostgresLogMessage) -> None:
        if "maintenance_work_mem" in message.message:
            warnings.append(f"{message.message} ({memory}MB; the index build wanted {-(-wanted // 2**20)}MB:"
                            " raise --index-memory)")  # fmt: skip

    conn.add_log_listener(listen)
    try:
        await conn.execute(f"set maintenance_work_mem = '{memory}MB'")
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.execute("reset maintenance_work_mem")
        conn.remove_log_listener(listen)
    return warnings


def memory_mb(wanted: int, cap_mb: int) -> int:
    """``wanted`` bytes in whole MB, never below the rebuild's usual 256MB nor above ``cap_mb``
    (unless the cap is below 256MB)."""
    return min(max(-(-wanted // 2**20), _FLOOR_MB), max(cap_mb, _FLOOR_MB))
