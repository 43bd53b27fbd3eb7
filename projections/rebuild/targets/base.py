"""One projection as the rebuild sees it (``RebuildTarget``), and the error it reports with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from projections.errors import ProjectionError
from projections.items import Item


class RebuildError(ProjectionError):
    """The rebuild cannot start or cannot swap: the reason is for the operator."""


async def _nothing(_conn: asyncpg.Connection) -> None:
    return None


@dataclass(frozen=True)
class RebuildTarget:
    """One projection as the rebuild sees it.

    ``name`` is the projection's name in ``projection_offsets`` (and in the advisory lock key
    its live store takes per partition). ``clock_columns`` hold the wall-clock time a row was
    written (``now()``): they legitimately differ between a rebuild and the live tables, so
    checksums leave them out.

    ``prepare`` is the pure, CPU-bound half of a write (decode is done before it) and ``write``
    the I/O half, so the rebuild can prepare the next batch while Postgres writes this one.
    ``settle`` finishes what batches applied concurrently, or concurrently with another
    projector, can leave undone; it runs after the load and again in the swap transaction,
    under ``swap_locks``: the locks the other writers of these tables take before the tables' own.
    ``on_swap`` runs in the swap transaction once the swap is decided, just before it: what the
    projection writes outside its own tables is made to agree with the tables going live; it
    returns a line for the report, or None. ``init`` prepares each of the rebuild's connections
    (codecs), as the live projector's pool does. ``index_memory`` says how many bytes the index
    builds after the load want in ``maintenance_work_mem`` (``projections.rebuild.indexes``).
    """

    key: str
    name: str
    topics: tuple[str, ...]
    tables: tuple[str, ...]
    clock_columns: frozenset[str]
    decode: Callable[[bytes], Any]
    prepare: Callable[[Sequence[Item[Any]]], Any]
    write: Callable[[asyncpg.Connection, Any], Awaitable[None]]
    settle: Callable[[asyncpg.Connection], Awaitable[None]] = _nothing
    swap_locks: Callable[[asyncpg.Connection], Awaitable[None]] = _nothing
    on_swap: Callable[[asyncpg.Connection], Awaitable[str | None]] | None = None
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
    index_memory: Callable[[asyncpg.Connection], Awaitable[int]] | None = None
    #: Like the live writer's ``keeps_expired_chats`` (``projections.items.screened``).
    keeps_expired_chats: bool = False
