"""The media projection as the rebuild sees it: wa.media and the three enrichment topics ->
chat_media, with the live media projector's decode, fold and upsert.

The live projector also copies each batch's text to chat_messages (``projections.media.handoff``).
The rebuild does not, batch by batch: its shadow chat_media is behind the live one while it
loads, and an older transcript copied to the live chat_messages would be visible to readers.
Once the swap is decided, in its transaction and under every message-text lock, chat_messages
is given the text the rebuilt chat_media implies (``projections.rebuild.targets.texts``).
"""

from __future__ import annotations

import asyncpg

from contracts.settings import Settings
from projections.media.logic import MediaOps, fold
from projections.media.main import PROJECTOR
from projections.media.store import write_media
from projections.rebuild.targets import texts
from projections.rebuild.targets.base import RebuildTarget


def media_target(settings: Settings) -> RebuildTarget:
    redact = settings.deleted_messages == "redact"

    async def write(conn: asyncpg.Connection, ops: MediaOps) -> None:
        if ops.rows:
            await write_media(conn, ops)

    async def on_swap(conn: asyncpg.Connection) -> str | None:
        changed = await texts.refresh(conn, redact_deleted=redact)
        return f"{changed:,} chat_messages rows took the rebuilt chat_media's text" if changed else None

    return RebuildTarget(
        key="media", name=PROJECTOR.name, topics=PROJECTOR.process.inputs, tables=("chat_media",),
        clock_columns=frozenset({"created_at", "updated_at"}), decode=PROJECTOR.decode, prepare=fold, write=write,
        swap_locks=texts.lock_every_text, on_swap=on_swap,
    )  # fmt: skip
