"""``python -m projections`` killed with SIGKILL in the middle of a stream and started again
ends with exactly the rows the log describes: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from contracts.messages import TOPIC, MessageEvent
from contracts.processes import PROJECTOR
from contracts.settings import Settings
from runtime.kafka import end_offsets
from msgmem.localstack.processes import Child, env_with
from projections.consumer import READY_LINE
from tests.integration.test_projector import caught_up, channel, eventually, produce, stored_offsets
from tests.unit.projections.factory import Chat

pytestmark = pytest.mark.integration

CHATS, MESSAGES = 100, 8_000  # half of them outbound with 3 statuses each: 20,000 events
CHECKSUM_SQL = """
select count(*) as n, md5(coalesce(string_agg(id || '|' || direction || '|' || coalesce(body, '') || '|'
       || coalesce(status, ''), ',' order by id collate "C"), '')) as checksum
from chat_messages where chat_key = any($1::text[])
"""


def workload(chan: str) -> tuple[list[MessageEvent], list[str], list[str]]:
    """Events (statuses sometimes before their message), chat keys, and the expected rows as text."""
    rng = random.Random(4)
    chats = [Chat(channel=chan, chat_id=f"1555{n:07d}") for n in range(CHATS)]
    events: list[MessageEvent] = []
    expected: list[tuple[str, str]] = []
    for i in range(MESSAGES):
        chat, t = chats[i % CHATS], i
        if i % 2 == 0:
            group: list[MessageEvent] = [chat.received(f"m{i}", f"in {i}", t=t)]
            expected.append((chat.mid(f"m{i}"), f"inbound|in {i}|"))
        else:
            group = [chat.sent(f"m{i}", f"out {i}", t=t), chat.status(f"m{i}", "sent", t + 0.1),
                     chat.status(f"m{i}", "delivered", t + 0.2), chat.status(f"m{i}", "read", t + 0.3)]  # fmt: skip
            rng.shuffle(group)
            expected.append((chat.mid(f"m{i}"), f"outbound|out {i}|read"))
        events.extend(group)
    rows = [f"{mid}|{rest}" for mid, rest in sorted(expected)]
    return events, [c.key for c in chats], rows


def projector_child(settings: Settings, group: str, cwd: Path, output: list[str]) -> Child:
    env = env_with(PROJECTOR.env(settings) | {
        "KAFKA_GROUP_PREFIX": f"{group}-", "PROJECTOR_BATCH_SIZE": "500", "PROJECTOR_BATCH_TIMEOUT_MS": "50",
        "ENVIRONMENT": "test", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    return Child("projector", [sys.executable, "-m", "projections.messages"], ready_pattern=READY_LINE, env=env, cwd=cwd,
                 sink=output.append)  # fmt: skip


async def test_sigkill_mid_stream_and_restart_ends_with_exactly_the_expected_rows(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    # No stored offsets: the projector starts at the beginning of (this test's) wa.messages,
    # which is the path a fresh deployment or a rebuild takes.
    await db.execute("truncate chat_message_pending")
    events, keys, expected_rows = workload(channel())
    assert len(events) == 20_000
    duplicates = events[:1_000]  # a redelivery of the first thousand, appended at the end
    group, output = f"test-crash-{uuid.uuid4().hex[:8]}", []
    count = lambda: db.fetchval("select count(*) from chat_messages where chat_key = any($1::text[])", keys)  # noqa: E731

    first = projector_child(settings, group, tmp_path, output).start()
    try:
        await asyncio.to_thread(first.wait_ready, 60)
        producing = asyncio.create_task(produce(settings, [*events, *duplicates]))
        seen = await eventually(count, lambda n: n >= 2_000, timeout=120)
        os.kill(first.pid or 0, signal.SIGKILL)
        await asyncio.to_thread(first.stop)
        killed_at = await count()
        await producing
    finally:
        first.stop()
    assert first.returncode == -signal.SIGKILL
    assert seen <= killed_at < MESSAGES, "the kill must land mid-stream"

    second = projector_child(settings, group, tmp_path, output).start()
    try:
        await asyncio.to_thread(second.wait_ready, 60)
        try:
            end = await caught_up(db, settings, timeout=120)
        except AssertionError as exc:
            raise AssertionError("\n".join(output[-40:])) from exc
        result = await db.fetchrow(CHECKSUM_SQL, keys)
        assert await stored_offsets(db) == {tp: o for tp, o in end.items() if o}
        assert await end_offsets(settings, TOPIC) == end  # nothing else was produced meanwhile
    finally:
        second.stop()
    assert second.returncode == 0, "\n".join(output[-40:])
    assert any("projector stopped" in line for line in output)

    assert result["n"] == MESSAGES
    assert result["checksum"] == hashlib.md5(",".join(expected_rows).encode()).hexdigest()
    assert await db.fetchval("select count(*) from chats where chat_key = any($1::text[])", keys) == CHATS
    assert await db.fetchval("select count(*) from chat_message_pending where chat_key = any($1::text[])", keys) == 0
