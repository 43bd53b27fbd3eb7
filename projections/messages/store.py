"""Writes a folded batch of wa.messages events to chats, chat_messages, chat_message_pending
and chat_message_versions.

Runs inside the transaction ``projections.postgres.PostgresProjectionStore`` opens per batch:
chats first (chat_messages references them), then the messages, then whatever was waiting
for those messages, then the batch's statuses, edits, deletions and reactions, then the
versions of message texts (none kept of a deleted message with DELETED_MESSAGES=redact),
then the text derived from media that chat_media already holds for the batch's media messages
and edits (``projections.media.handoff``, under its locks, taken before any write), then the
optional link of chats to an existing users table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from contracts.errors import describe_error
from contracts.messages import MEDIA_TYPES, MessageEvent
from projections.errors import UsersTableError
from projections.items import Item
from projections.media import handoff
from projections.messages import sql
from projections.messages.logic import RowOps, fold
from projections.messages.rows import STATUS_ORDER, MessageUpdate

PROJECTION = "chat_messages"


class MessagesWriter:
    # Events past a MESSAGE_RETENTION_DAYS cut-off still update their chat's row (projections.items.screened).
    keeps_expired_chats = True

    def __init__(self, *, redact_deleted: bool, users_table: str | None = None) -> None:
        self._redact = redact_deleted
        self._link_users = sql.link_users(users_table) if users_table else None
        self._merge_args: tuple[Any, ...] = (list(STATUS_ORDER), sorted(MEDIA_TYPES), redact_deleted)
        self._flagged: Counter[str] = Counter()

    async def write(self, conn: asyncpg.Connection, items: Sequence[Item[MessageEvent]]) -> None:
        await self.write_ops(conn, fold(items))

    async def write_ops(self, conn: asyncpg.Connection, ops: RowOps) -> None:
        derived = _may_take_derived_text(ops)
        await handoff.lock_messages(conn, derived)
        if ops.chats:
            await conn.execute(sql.UPSERT_CHATS, *_columns(ops.chats.values(), sql.CHAT_COLUMNS))
        if ops.messages:
            await conn.execute(sql.INSERT_MESSAGES, self._redact, *_columns(ops.messages.values(), sql.MESSAGE_COLUMNS))
            await conn.execute(sql.MERGE_PENDING, *self._merge_args, list(ops.messages))
        if ops.updates:
            await conn.execute(sql.APPLY_UPDATES, *self._merge_args, *_update_columns(ops.updates.values()))
        if ops.versions:
            await conn.execute(sql.INSERT_VERSIONS, self._redact, *_columns(ops.versions.values(), sql.VERSION_COLUMNS))
        deleted = ops.deleted_ids() if self._redact else []
        if deleted:
            await conn.execute(sql.REDACT_VERSIONS, deleted)
        if ops.consents:
            await conn.execute(sql.INSERT_CONSENT, *_columns(ops.consents.values(), sql.CONSENT_COLUMNS))
        if ops.judge:
            chats = sorted(ops.judge)
            flags = await conn.fetch(sql.JUDGE_OUTBOUND, chats, [ops.judge[c] for c in chats])
            self._flagged.update(r["compliance_flag"] for r in flags if r["compliance_flag"])
        await handoff.copy_text(conn, derived, redact_deleted=self._redact)
        if self._link_users and ops.chats:
            await conn.execute(self._link_users, list(ops.chats))


    def take_flags(self) -> dict[str, int]:
        """Outbound messages newly flagged since the last call, by reason: the store asks after
        each commit (a batch rolled back and retried counts once)."""
        flagged, self._flagged = dict(self._flagged), Counter()
        return flagged

    def discard_flags(self) -> None:
        """The transaction that flagged them did not commit."""
        self._flagged.clear()


async def check_users_table(conn: asyncpg.Connection, users_table: str) -> None:
    """Refuse to start on a USERS_TABLE that cannot be read as (id, phone): failing later, per
    batch, would look like poison and dead-letter good events."""
    try:
        await conn.fetch(f"select id::text, phone::text from {users_table} limit 0")
    except asyncpg.PostgresError as exc:
        raise UsersTableError(f"USERS_TABLE={users_table}: {describe_error(exc)}") from exc


def _may_take_derived_text(ops: RowOps) -> list[str]:
    """Media messages written by the batch, and edited messages (an edit may clear a caption)."""
    written = (m.id for m in ops.messages.values() if m.message_type in MEDIA_TYPES)
    edited = (u.message_id for u in ops.updates.values() if u.edited_at is not None)
    return sorted({*written, *edited})


def _columns(rows: Any, columns: list[tuple[str, str]]) -> list[list[Any]]:
    rows = list(rows)
    return [[getattr(row, name) for row in rows] for name, _ in columns]


def _update_columns(updates: Any) -> list[list[Any]]:
    rows: list[MessageUpdate] = list(updates)
    out = _columns(rows, sql.UPDATE_COLUMNS[:-1])
    out.append([orjson.dumps({k: r.to_json() for k, r in u.reactions.items()}).decode() for u in rows])
    return out
