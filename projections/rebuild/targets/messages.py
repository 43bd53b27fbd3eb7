"""The messages projection as the rebuild sees it: wa.messages -> chats, chat_messages,
chat_message_pending, chat_message_versions.

Its derived text columns (transcript, extracted text, AI caption) belong to the media
projection's chat_media: they are copied from the live chat_media, which the shadow schema
does not shadow (``projections.rebuild.targets.texts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import asyncpg

from contracts.messages import MEDIA_TYPES, MessageEvent, decode_event
from contracts.messages import TOPIC as MESSAGES_TOPIC
from contracts.settings import Settings
from projections.items import Item
from projections.media import handoff
from projections.messages import sql
from projections.messages.logic import RowOps, fold
from projections.messages.rows import STATUS_ORDER
from projections.messages.store import PROJECTION as MESSAGES_PROJECTION
from projections.messages.store import MessagesWriter
from projections.rebuild.targets.base import RebuildTarget
from projections.rebuild.targets.texts import lock_every_text


def messages_target(settings: Settings) -> RebuildTarget:
    """wa.messages -> chats, chat_messages, chat_message_pending, chat_message_versions, written
    exactly as the live projector writes them (same fold, same SQL, same DELETED_MESSAGES and
    USERS_TABLE)."""
    writer = MessagesWriter(redact_deleted=settings.deleted_messages == "redact", users_table=settings.users_table)

    redact = settings.deleted_messages == "redact"
    merge_args = (list(STATUS_ORDER), sorted(MEDIA_TYPES), redact)  # as the writer's

    def prepare(items: Sequence[Item[MessageEvent]]) -> RowOps:
        return fold(items)

    async def settle(conn: asyncpg.Connection) -> None:
        """Fold parked updates whose message exists, then copy chat_media's text again.

        An update is parked in chat_message_pending while its message has no row, and folded in
        when the message is written; if both are written at once by two workers (the update
        keyed by another chat than its message, so on another partition), neither transaction
        sees the other's row and the update stays parked. And the media projector copies text
        to the live chat_messages only: what it produced after the shadow wrote a message is
        copied here. Both merges are order-independent, so doing them late gives the same rows.
        Likewise, with DELETED_MESSAGES=redact, a version written while another worker deleted its
        message is removed here.
        """
        async with conn.transaction():
            parked = await conn.fetchval("select array(select p.message_id from chat_message_pending p"
                                         " join chat_messages m on m.id = p.message_id)")  # fmt: skip
            if parked:
                await conn.execute(sql.MERGE_PENDING, *merge_args, parked)
            if redact:
                await conn.execute(sql.REDACT_VERSIONS, None)
            media = await conn.fetchval("select array(select distinct message_id from chat_media)")
            await handoff.copy_text(conn, media, redact_deleted=redact)

    async def write(conn: asyncpg.Connection, ops: RowOps) -> None:
        await writer.write_ops(cast(asyncpg.Connection, _WithoutTextLocks(conn)), ops)

    return RebuildTarget(
        key="messages", name=MESSAGES_PROJECTION, topics=(MESSAGES_TOPIC,),
        tables=("chats", "chat_messages", "chat_message_pending", "chat_message_versions", "chat_consent_changes"),
        clock_columns=frozenset({"created_at", "updated_at", "first_seen_at"}),
        decode=decode_event, prepare=prepare, write=write, settle=settle, swap_locks=lock_every_text,
        keeps_expired_chats=True,
    )  # fmt: skip


class _WithoutTextLocks:
    """The rebuild's connection, minus the message-text locks of ``projections.media.handoff``.

    Those locks order the messages projector's and the media projector's copies of derived
    text into the live chat_messages. The shadow chat_messages is not the media projector's,
    and ``settle`` copies chat_media's text again at the swap, under every one of those locks,
    so the rebuild does not need them per batch. Taken per batch, they make the workers take
    turns (a batch of thousands of messages holds all 256 buckets until it commits; measured
    on two cores: 28,000 against 32,000 events/s, less on a busy machine) and the live media
    projector wait.
    Should the lock statement change, it is simply taken again: slower, never wrong.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, query: str, *args: Any) -> str:
        if query == handoff._LOCK:
            return "SELECT 0"
        return cast(str, await self._conn.execute(query, *args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)
