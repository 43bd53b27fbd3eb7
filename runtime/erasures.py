"""Asking for an erasure and waiting for it: `msgmem erase` and the recall service's
POST /admin/erasures share this. Appending the ``ErasureRequested`` is the whole request (the
log is the only writer); the erasures projector applies it and its ``erasures`` row is the
completion, so waiting is polling that row. The receipt holds ids, times and counts only."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from contracts.erasure import ErasureRequested, SubjectKind, subject_hash
from contracts.settings import Settings
from contracts.topics import ERASURES
from runtime.kafka import make_producer


class ErasureTimeout(TimeoutError):
    """The erasure is on the ledger but was not applied in time (is the erasures projector running?)."""


@dataclass(frozen=True)
class Receipt:
    """What an erasure did, without personal data: ids, times, counts."""

    erasure_id: str
    requested_at: datetime
    completed_at: datetime
    chats: int
    removed: dict[str, dict[str, int]]

    def to_json(self) -> dict[str, Any]:
        return {
            "erasure_id": self.erasure_id, "requested_at": self.requested_at.isoformat(),
            "completed_at": self.completed_at.isoformat(), "chats": self.chats, "removed": self.removed,
        }  # fmt: skip


def new_request(kind: SubjectKind, value: str, *, by: str, reason: str | None = None) -> ErasureRequested:
    """The event for erasing ``value`` (raises ``SubjectError`` when it names nothing)."""
    return ErasureRequested(
        erasure_id=str(uuid.uuid4()), subject_kind=kind, subject_hash=subject_hash(kind, value),
        requested_at=datetime.now(UTC), requested_by=by[:100], reason=reason or None,
    )  # fmt: skip


async def append(settings: Settings, event: ErasureRequested) -> None:
    """Put the request on wa.erasures (acknowledged by every in-sync replica)."""
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(ERASURES.name, event.encode(), key=event.key)
    finally:
        await producer.stop()


async def wait_for(settings: Settings, erasure_id: str, *, timeout: float | None = None) -> Receipt:
    """The receipt once the erasures projector has applied ``erasure_id``."""
    deadline = time.monotonic() + (timeout if timeout is not None else settings.erasure_wait_seconds)
    conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
    try:
        while True:
            row = await conn.fetchrow("select * from erasures where erasure_id = $1", erasure_id)
            if row is not None:
                return Receipt(row["erasure_id"], row["requested_at"], row["completed_at"], row["chats"],
                               orjson.loads(row["removed"]))  # fmt: skip
            if time.monotonic() >= deadline:
                raise ErasureTimeout(f"erasure {erasure_id} not applied yet: is erasures_projector running?")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def erase(settings: Settings, kind: SubjectKind, value: str, *, by: str, reason: str | None = None,
                timeout: float | None = None) -> Receipt:  # fmt: skip
    event = new_request(kind, value, by=by, reason=reason)
    await append(settings, event)
    return await wait_for(settings, event.erasure_id, timeout=timeout)
