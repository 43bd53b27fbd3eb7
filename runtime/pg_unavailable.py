"""Which failures mean Postgres cannot answer now (down, starting up, shutting down, the
connection dropped, no answer in time), as opposed to a statement it refuses: the first kind
only time fixes, so readers on a stage's path turn it into ``StoreUnavailable`` and wait."""

from __future__ import annotations

import asyncpg

UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, "cannot connect now"
)
