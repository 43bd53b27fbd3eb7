"""Writes a folded batch of wa.deadletter events to ``dead_letters``, inside the transaction
``projections.postgres.PostgresProjectionStore`` opens per batch (rows and offsets together)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from contracts.deadletter import AnyLetterEvent
from projections.deadletters import sql
from projections.deadletters.logic import LetterChange, fold
from projections.items import Item

PROJECTION = "dead_letters"


class DeadLettersWriter:
    async def write(self, conn: asyncpg.Connection, items: Sequence[Item[AnyLetterEvent]]) -> None:
        await self.write_changes(conn, fold(items))

    async def write_changes(self, conn: asyncpg.Connection, changes: list[LetterChange]) -> None:
        """The I/O half of ``write`` (the rebuild folds a batch while the previous one is written)."""
        letters = [c for c in changes if c.failures]
        markers = [c for c in changes if not c.failures]
        if letters:
            await conn.execute(sql.UPSERT_LETTERS, *_arrays(letters, sql.LETTER_COLUMNS))
        if markers:
            await conn.execute(sql.UPDATE_MARKERS, *_arrays(markers, sql.MARKER_COLUMNS))


def _arrays(changes: list[LetterChange], columns: list[tuple[str, str]]) -> list[list[Any]]:
    return [[getattr(change, name) for change in changes] for name, _ in columns]
