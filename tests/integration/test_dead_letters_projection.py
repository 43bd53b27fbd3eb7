"""Dead letters as a table, against the real broker and Postgres: a poison delivery the real
normalize stage dead-letters becomes an open row in dead_letters (written by the real
deadletters_projector process); `msgmem dlq retry` logs who retried it and its outcome, so the
row is open again while the fault stays (one failure more), and resolved once the fix ships.
The SQL applies each change once, in log order, across batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import asyncpg
import pytest

from contracts import deadletter, processes, raw
from contracts.deadletter import AnyLetterEvent, letter_id
from contracts.settings import Settings
from msgmem.dlq import load, retry
from projections.deadletters.store import PROJECTION, DeadLettersWriter
from projections.items import Item
from runtime.kafka import end_offsets
from streams.normalize import providers
from tests.integration.test_ops_dlq_status import append_raw, unknown_provider_delivery
from tests.services import running
from tests.unit.projections.test_deadletters_fold import letter, resolved, retried
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def start_at_end(db: asyncpg.Connection, settings: Settings) -> None:
    """Store the current end of wa.deadletter, so the projector reads only this test's letters."""
    for tp, offset in (await end_offsets(settings, deadletter.TOPIC)).items():
        await db.execute("insert into projection_offsets (projection, topic, partition, next_offset) "
                         "values ($1, $2, $3, $4)", PROJECTION, deadletter.TOPIC, tp.partition, offset)  # fmt: skip


async def row_after_catching_up(db: asyncpg.Connection, settings: Settings, letter: str) -> asyncpg.Record:
    """The letter's row once the projector has applied everything on wa.deadletter now."""
    end = await end_offsets(settings, deadletter.TOPIC)

    async def applied() -> bool:
        stored = dict(await db.fetch("select partition, next_offset from projection_offsets where projection = $1",
                                     PROJECTION))  # fmt: skip
        return all(stored.get(tp.partition, 0) >= offset for tp, offset in end.items())

    await eventually(applied, timeout=60)
    return await db.fetchrow("select * from dead_letters where letter_id = $1", letter)


async def test_a_poison_delivery_is_an_open_row_retried_by_someone_then_resolved(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = unknown_provider_delivery()
    await start_at_end(db, settings)
    at = await append_raw(settings, delivery)
    poison = letter_id(processes.NORMALIZE.name, raw.TOPIC, at.partition, at.offset)

    with running("deadletters_projector", settings, tmp_path), running("normalize", settings, tmp_path):
        row = await eventually(lambda: db.fetchrow("select * from dead_letters where letter_id = $1", poison),
                               timeout=90)  # fmt: skip
        assert (row["stage"], row["state"], row["error_type"], row["failures"]) == (
            "normalize", "open", "UnparseableDelivery", 1)
        assert "waha" in row["error"] and delivery.body.decode() not in row["error"]
        assert (row["source_topic"], row["source_partition"], row["source_offset"], row["part"]) == (
            raw.TOPIC, at.partition, at.offset, None)
        assert (row["key"], row["first_seen"], row["retried_by"]) == (delivery.key.decode(), row["last_seen"], None)
        first_attempts = row["attempts"]

        # Still broken: the retry is logged with who ran it, fails, and the row is open again.
        [item] = [x for x in (await load(settings)).values() if x.letter.dead_letter_id == poison]
        [failed] = await retry(settings, [item], by="dana")
        assert not failed.ok
        again = await row_after_catching_up(db, settings, poison)
        assert (again["state"], again["failures"], again["attempts"]) == ("open", 2, first_attempts + 1)
        assert (again["retried_by"], again["resolved_at"]) == ("dana", None)
        assert again["first_seen"] == row["first_seen"] and again["last_seen"] > row["last_seen"]
        assert row["last_seen"] < again["retried_at"] <= again["last_seen"]

        # The fix ships: the retry goes through and the row is resolved.
        monkeypatch.setitem(providers.NORMALISERS, "waha", providers.NORMALISERS["whapi"])
        [ok] = await retry(settings, [item], by="sam")
        assert ok.ok
        done = await row_after_catching_up(db, settings, poison)
        assert (done["state"], done["retried_by"], done["outputs"], done["failures"]) == ("resolved", "sam", 1, 2)
        assert done["retried_at"] > again["retried_at"] and done["resolved_at"] >= done["retried_at"]


async def write(db: asyncpg.Connection, events: Sequence[tuple[int, AnyLetterEvent]]) -> asyncpg.Record:
    """Apply ``(offset, event)`` as one batch, as the projector's store does; return the row."""
    items = [Item(e, deadletter.TOPIC, 0, offset, e.stage.encode(), e.encode()) for offset, e in events]
    async with db.transaction():
        await DeadLettersWriter().write(db, items)
    return await db.fetchrow("select * from dead_letters where letter_id = $1", letter(0).dead_letter_id)


async def test_the_sql_applies_each_change_once_in_log_order_across_batches(db: asyncpg.Connection) -> None:
    assert await write(db, [(9, retried(1))]) is None  # a marker without its letter changes nothing
    first = [(10, letter(0))]
    row = await write(db, first)
    assert (row["state"], row["attempts"], row["failures"], row["applied_offset"]) == ("open", 3, 1, 10)
    row = await write(db, [(11, retried(5, by="dana"))])
    assert (row["state"], row["retried_by"], row["failures"]) == ("retried", "dana", 1)
    failed_again = [(12, letter(6, attempts=1))]
    row = await write(db, failed_again)
    assert (row["state"], row["attempts"], row["failures"], row["retried_by"]) == ("open", 4, 2, "dana")
    assert (row["first_seen"], row["last_seen"]) == (letter(0).failed_at, letter(6).failed_at)
    for repeat in (first, failed_again, [(11, retried(5, by="dana"))]):  # a batch applied twice counts once
        assert dict(await write(db, repeat)) | {"updated_at": None} == dict(row) | {"updated_at": None}
    row = await write(db, [(13, retried(7, by="sam")), (14, resolved(8, outputs=2))])
    assert (row["state"], row["retried_by"], row["outputs"], row["applied_offset"]) == ("resolved", "sam", 2, 14)
    row = await write(db, [(15, letter(9, attempts=1))])  # broken again later: the resolution no longer holds
    assert (row["state"], row["resolved_at"], row["outputs"], row["failures"], row["attempts"]) == ("open", None, None, 3, 5)
