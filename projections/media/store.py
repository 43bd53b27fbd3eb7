"""Writes a folded batch of media and enrichment events to chat_media, then copies the text
to chat_messages.

Runs inside the transaction ``projections.postgres.PostgresProjectionStore`` opens per batch:
first the message-text locks (``projections.media.handoff``) for every message of the batch,
then the one upsert of chat_media, then the copy of the batch's text to the messages that
already have a row (the messages projector copies it to the others when it writes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from projections.items import Item
from projections.media import handoff, sql
from projections.media.logic import MediaOps, MediaProjectionEvent, fold

PROJECTION = "chat_media"


class MediaWriter:
    def __init__(self, *, redact_deleted: bool) -> None:
        self._redact = redact_deleted

    async def write(self, conn: asyncpg.Connection, items: Sequence[Item[MediaProjectionEvent]]) -> None:
        await self.write_ops(conn, fold(items))

    async def write_ops(self, conn: asyncpg.Connection, ops: MediaOps) -> None:
        if not ops.rows:
            return
        await handoff.lock_messages(conn, ops.message_ids)
        await write_media(conn, ops)
        await handoff.copy_text(conn, ops.messages_with_text, redact_deleted=self._redact)


async def write_media(conn: asyncpg.Connection, ops: MediaOps) -> None:
    """Everything a batch writes to chat_media, none of the handoff around it: all a rebuild's
    shadow chat_media takes (``projections.rebuild.targets.media``)."""
    await conn.execute(sql.UPSERT_MEDIA, *_columns(ops))


def _columns(ops: MediaOps) -> list[list[Any]]:
    rows = list(ops.rows.values())
    return [[getattr(row, name) for row in rows] for name, _ in sql.MEDIA_COLUMNS]
