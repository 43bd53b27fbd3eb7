"""`msgmem export`: everything the tables and media storage hold about a contact, as one JSON
file plus its media files, for a subject access request.

Per chat (one chat key, or every chat of a phone number, found as an erasure would find them):
the chat row (contact, consent state and when it last changed), every message with its text
versions, status, reactions, transcript, caption and extracted text, pending changes, media rows
and their files (copied from MEDIA_STORAGE into ``files/``), and the consent history: every
``ConsentChanged`` of the chat on wa.messages (only the chat's partition is read: chat keys are
the producers' record keys, placed by the default murmur2 partitioner), less what the erasure
ledger hides. Writes nothing but the output folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import asyncpg
import orjson
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from contracts import messages as message_events
from contracts.envelope import EventDecodeError
from contracts.erasure import Ledger, SubjectKind, normalised, subject_hash
from contracts.settings import Settings
from contracts.topics import MESSAGES
from runtime.erasure_ledger import read_ledger
from runtime.kafka import partitions_of, standalone_consumer
from projections.erasures import sql as erasure_sql
from projections.erasures.logic import chats_of
from runtime.media_storage import build_store

_JSON_COLUMNS = {"raw_event", "reactions"}


@dataclass(frozen=True)
class ExportSummary:
    chats: int
    messages: int
    files: int
    path: Path


def _row(record: asyncpg.Record) -> dict[str, Any]:
    out = dict(record)
    for name in _JSON_COLUMNS & out.keys():
        if isinstance(out[name], str):
            out[name] = orjson.loads(out[name])
    out.pop("embedding", None)
    return out


async def chats_for(conn: asyncpg.Connection, kind: SubjectKind, value: str) -> list[str]:
    """The chats an erasure of the same subject would remove."""
    candidates = [(r["chat_key"], r["contact_phone"]) for r in await conn.fetch(erasure_sql.CANDIDATE_CHATS)]
    return chats_of(subject_hash(kind, value), candidates)


async def export(settings: Settings, kind: SubjectKind, value: str, out: Path) -> ExportSummary:
    normalised(kind, value)  # refuses a subject naming nothing before anything is read
    out.mkdir(parents=True, exist_ok=True)
    conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
    store = None
    chats: list[dict[str, Any]] = []
    messages = files = 0
    try:
        ledger = await read_ledger(conn)
        for chat_key in await chats_for(conn, kind, value):
            chat = await conn.fetchrow("select * from chats where chat_key = $1", chat_key)
            rows = [_row(r) for r in await conn.fetch(
                "select * from chat_messages where chat_key = $1 order by provider_timestamp, id", chat_key)]  # fmt: skip
            versions: dict[str, list[dict[str, Any]]] = {}
            for v in await conn.fetch("select v.* from chat_message_versions v join chat_messages m on m.id = v.message_id"
                                      " where m.chat_key = $1 order by v.version_at", chat_key):  # fmt: skip
                versions.setdefault(v["message_id"], []).append(_row(v))
            for row in rows:
                row["versions"] = versions.get(row["id"], [])
            media = [_row(r) for r in await conn.fetch("select * from chat_media where chat_key = $1 order by id", chat_key)]
            for item in media:
                if item.get("path") and item.get("status") == "stored":
                    store = store or await build_store(settings, create_bucket=False)
                    name = PurePosixPath(item["path"]).name
                    target = out / "files" / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(await store.read(item["path"]))
                    item["exported_file"] = f"files/{name}"
                    files += 1
            pending = [_row(r) for r in await conn.fetch(
                "select * from chat_message_pending where chat_key = $1", chat_key)]  # fmt: skip
            chats.append({"chat": _row(chat) if chat else {"chat_key": chat_key}, "messages": rows, "media": media,
                          "pending_changes": pending, "consent_history": await consent_history(settings, chat_key,
                                                                                               ledger)})  # fmt: skip
            messages += len(rows)
    finally:
        await conn.close()
        if store is not None:
            await store.aclose()
    document = {"exported_at": datetime.now(UTC), "subject_kind": kind, "chats": chats}
    path = out / "export.json"
    path.write_bytes(orjson.dumps(document, default=str, option=orjson.OPT_INDENT_2))
    return ExportSummary(len(chats), messages, files, path)


async def consent_history(settings: Settings, chat_key: str, ledger: Ledger) -> list[dict[str, Any]]:
    """The chat's ConsentChanged events in log order, read from its partition of wa.messages."""
    key = chat_key.encode()
    parts = await partitions_of(settings, MESSAGES.name)
    numbers = sorted(tp.partition for tp in parts)
    tp = TopicPartition(MESSAGES.name, DefaultPartitioner()(key, numbers, numbers))
    consumer = await standalone_consumer(settings)
    found: list[dict[str, Any]] = []
    try:
        end = (await consumer.end_offsets([tp]))[tp]
        start = (await consumer.beginning_offsets([tp]))[tp]
        if end <= start:
            return found
        consumer.assign([tp])
        consumer.seek(tp, start)
        while True:
            batch = await consumer.getmany(tp, timeout_ms=2000, max_records=10_000)
            records = batch.get(tp, [])
            for r in records:
                if r.offset < end and r.key == key and r.value and b'"consent_changed"' in r.value:
                    try:
                        event = message_events.decode_event(r.value)
                    except EventDecodeError:
                        continue  # poison: dead-lettered by the projector, nothing to export
                    if isinstance(event, message_events.ConsentChanged) and not ledger.hides_event(event):
                        found.append({"state": event.state, "keyword": event.keyword,
                                      "occurred_at": event.occurred_at, "message_id": event.message_id})  # fmt: skip
            if await consumer.position(tp) >= end:
                return found
    finally:
        await consumer.stop()
