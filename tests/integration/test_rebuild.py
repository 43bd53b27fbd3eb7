"""``msgmem projections rebuild`` against the real broker and Postgres: the messages projection
rebuilt from offset 0 into shadow tables, compared with the live tables and swapped in while
the live projector runs and readers read.

Each test has topics of its own (the ``settings`` fixture) and the ``db`` fixture empties the
tables and ``projection_offsets``, so the live projector starts at the beginning of the
test's wa.messages and the rebuild reads the same log: both must end with the same rows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from contracts.messages import MessageEvent
from contracts.settings import Settings
from runtime.kafka import end_offsets
from projections.media import handoff
from projections.messages.store import PROJECTION
from projections.rebuild.run import RebuildError, rebuild
from projections.rebuild.report import ProjectionReport
from tests.integration.test_projector import caught_up, channel, eventually, fixture_events, produce, projector
from tests.unit.normalize.webhooks import all_cases
from tests.unit.projections.factory import Chat

pytestmark = pytest.mark.integration

TABLES = ("chats", "chat_messages", "chat_message_pending", "chat_message_versions", "chat_consent_changes")
CLOCKS = {"created_at", "updated_at", "first_seen_at"}
ORDER = {
    "chats": 'chat_key collate "C"', "chat_messages": 'id collate "C"', "chat_message_pending": 'message_id collate "C"',
    "chat_message_versions": 'message_id collate "C", event_id collate "C"', "chat_media": 'id collate "C"',
    "chat_consent_changes": 'event_id collate "C"',
    "message_embeddings": 'message_id collate "C", chunk_index',
    "message_embedding_sources": 'message_id collate "C", source', "message_embedding_deletions": 'message_id collate "C"',
}  # fmt: skip


def workload(chan: str) -> list[MessageEvent | tuple[bytes, bytes]]:
    """Every provider fixture, and by hand what makes merges order-sensitive if they were wrong:
    statuses and edits before their message, a deletion, reactions added and removed, consent,
    an unsupported message, statuses of a message never logged, a reaction keyed by another
    chat than its message (another partition), and a record that does not decode."""
    dana, ravi = Chat(channel=chan), Chat(channel=chan, chat_id="15550005678", contact_name="Ravi")
    events: list[MessageEvent | tuple[bytes, bytes]] = [
        e for provider, case in all_cases() for e in fixture_events(provider, case, chan)
    ]
    for n in range(40):
        m = f"m{n}"
        events += [dana.status(m, "read", n + 3), dana.sent(m, f"reply {n}", t=n), dana.status(m, "delivered", n + 2)]
        events += [ravi.edited(f"r{n}", f"edited {n}", n + 5), ravi.received(f"r{n}", f"question {n}", t=n)]
    events += [
        ravi.deleted("r3", 50), ravi.reaction("r4", "👍", 51), ravi.reaction("r4", None, 52),
        dana.reaction("r5", "🎉", 53, reactor="15550005678"),  # on Ravi's message, keyed by Dana's chat
        dana.consent("c1", "opted_out", 54), ravi.unsupported("p1", 55), dana.status("never-logged", "sent", 56),
        (ravi.key.encode(), b"not json"),
    ]  # fmt: skip
    return events


async def table_rows(db: asyncpg.Connection, tables: tuple[str, ...] = TABLES) -> dict[str, list[dict[str, Any]]]:
    """Every row of the projected tables but the clocks, by primary key: checked apart from the
    rebuild's own checksums."""
    out = {}
    for table in tables:
        rows = await db.fetch(f"select * from {table} order by {ORDER[table]}")
        out[table] = [{k: v for k, v in dict(r).items() if k not in CLOCKS} for r in rows]
    return out


async def oids(db: asyncpg.Connection, tables: tuple[str, ...] = TABLES) -> dict[str, int]:
    return {t: await db.fetchval("select $1::regclass::oid", t) for t in tables}


def only(report: Any) -> ProjectionReport:
    [projection] = report.projections
    assert isinstance(projection, ProjectionReport)
    return projection


async def test_a_rebuild_equals_the_live_tables_and_is_swapped_in_while_both_run(
    settings: Settings, db: asyncpg.Connection
) -> None:
    chan = channel()
    async with projector(settings) as running:
        await produce(settings, workload(chan))
        await caught_up(db, settings)
        # the media projector's share of chat_messages: a transcript copied from chat_media
        voice = await db.fetchrow("select id, chat_key from chat_messages where message_type = 'voice' limit 1")
        await db.execute("insert into chat_media (id, message_id, chat_key, kind, transcript, status)"
                         " values ($1, $1, $2, 'voice', 'the transcript', 'stored')",
                         voice["id"], voice["chat_key"])  # fmt: skip
        await handoff.copy_text(db, [voice["id"]], redact_deleted=False)
        before, old = await table_rows(db), await oids(db)
        assert any(r["transcript"] == "the transcript" for r in before["chat_messages"])
        keys = sorted({r["chat_key"] for r in before["chat_messages"]})
        messages = len(before["chat_messages"])

        reads: list[int] = []
        stop = asyncio.Event()

        async def read() -> None:  # a reader on its own connection, all through the rebuild
            conn = await asyncpg.connect(settings.database_url)
            try:
                while not stop.is_set():
                    reads.append(await conn.fetchval("select count(*) from chat_messages"))
                    await asyncio.sleep(0.01)
            finally:
                await conn.close()

        reader = asyncio.create_task(read())
        report = await rebuild(settings, ["chat_messages"], progress=False, workers=2)
        stop.set()
        await reader

        p = only(report)
        assert p.swapped and p.match, p
        assert [c.table for c in p.comparisons] == list(TABLES)
        assert all(c.live == c.rebuilt and c.rebuilt.rows for c in p.comparisons if c.table != "chat_message_pending")
        assert p.undecodable >= 1 and p.events >= len(workload(chan))
        assert report.exit_code == 0
        assert reads and min(reads) == messages, "a reader saw a table other than the complete one"
        new = await oids(db)
        assert all(new[t] != old[t] for t in TABLES)
        assert await table_rows(db) == before
        assert await db.fetchval("select count(*) from pg_namespace where nspname ~ '^msgmem_(rebuild|replaced)_'") == 0

        # the new tables are the live tables' twins: names, RLS, indexes, constraints
        for table in TABLES:
            assert await db.fetchval("select relrowsecurity from pg_class where oid = $1::regclass", table)
        indexes = {r["indexname"] for r in await db.fetch("select indexname from pg_indexes where tablename = any($1)",
                                                          list(TABLES))}  # fmt: skip
        assert {"chats_pkey", "chats_contact_phone_idx", "chat_messages_chat_time_idx",
                "chat_messages_provider_message_key", "chat_message_pending_chat_idx"} <= indexes  # fmt: skip
        assert await db.fetchval("select count(*) from pg_constraint where conname = 'chat_messages_chat_key_fkey'"
                                 " and confrelid = 'chats'::regclass") == 1  # fmt: skip

        # the live projector goes on, into the new tables
        late = Chat(channel=chan, chat_id="15550007777")
        await produce(settings, [late.received("late-1", "after the swap"), late.status("late-2", "sent", 1)])
        await caught_up(db, settings)
        row = await eventually(lambda: db.fetchrow("select body from chat_messages where id = $1", late.mid("late-1")),
                               lambda r: r is not None)  # fmt: skip
        assert row["body"] == "after the swap"
        assert await db.fetchval("select count(*) from chat_message_pending where message_id = $1",
                                 late.mid("late-2")) == 1  # fmt: skip
        assert running.task.done() is False
    assert len(keys) > 3


async def test_a_corrupted_live_row_is_reported_and_swaps_follow_the_flags(
    settings: Settings, db: asyncpg.Connection
) -> None:
    chan = channel()
    dana = Chat(channel=chan)
    async with projector(settings):
        await produce(settings, workload(chan))
        await caught_up(db, settings)
    await db.execute("update chat_messages set body = 'tampered' where id = $1", dana.mid("m1"))
    await db.execute("delete from chat_messages where id = $1", dana.mid("m2"))
    old = await oids(db)

    dry = await rebuild(settings, ["messages"], progress=False, dry_run=True, workers=1)
    p = only(dry)
    assert not p.swapped and not p.match and dry.exit_code == 1
    messages = next(c for c in p.comparisons if c.table == "chat_messages")
    assert (messages.changed, messages.only_rebuilt, messages.only_live) == (1, 1, 0)
    assert messages.live.rows + 1 == messages.rebuilt.rows and messages.live.checksum != messages.rebuilt.checksum
    kinds = {(tuple(d.key.values()), d.kind, d.columns) for d in messages.samples}
    assert kinds == {((dana.mid("m1"),), "changed", ("body",)), ((dana.mid("m2"),), "only_rebuilt", ())}
    assert next(c for c in p.comparisons if c.table == "chats").match
    assert await oids(db) == old
    assert await db.fetchval("select body from chat_messages where id = $1", dana.mid("m1")) == "tampered"

    strict = await rebuild(settings, ["chat_message_pending"], progress=False, require_match=True)
    assert not only(strict).swapped and strict.exit_code == 1 and await oids(db) == old

    # Every projection this test runs a live projector for (dead_letters' would differ: the
    # poison's letters are on the log, and no live projector put them in the table here).
    repaired = await rebuild(settings, ["messages", "media", "embeddings"], progress=False)  # only chat_messages differs
    assert [(p.projection, p.swapped, p.match) for p in repaired.projections] == [
        ("chat_messages", True, False), ("chat_media", True, True), ("message_embeddings", True, True)]
    assert repaired.exit_code == 0
    assert await db.fetchval("select body from chat_messages where id = $1", dana.mid("m1")) == "reply 1"
    assert await db.fetchval("select count(*) from chat_messages where id = $1", dana.mid("m2")) == 1


async def test_without_a_live_projector_the_rebuild_stores_its_offsets_for_it(
    settings: Settings, db: asyncpg.Connection
) -> None:
    chan = channel()
    await produce(settings, workload(chan))
    end = await end_offsets(settings, "wa.messages")
    report = await rebuild(settings, ["chats"], progress=False, live_patience=0.5)
    p = only(report)
    assert p.swapped and p.live_behind == sum(end.values())  # the live tables were empty
    stored = await db.fetch("select partition, next_offset from projection_offsets where projection = $1", PROJECTION)
    assert {r["partition"]: r["next_offset"] for r in stored} == {tp.partition: o for tp, o in end.items() if o}
    rebuilt = await table_rows(db)
    async with projector(settings) as running:  # starts at the stored offsets: nothing to apply again
        await caught_up(db, settings)
        applied = running.metrics.registry.get_sample_value("msgmem_projector_events_applied_total",
                                                            {"projection": PROJECTION})  # fmt: skip
    assert not applied
    assert await table_rows(db) == rebuilt


async def test_a_view_on_the_tables_stops_the_rebuild_before_it_starts(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await db.execute("create view recent_messages as select id, body from chat_messages")
    try:
        with pytest.raises(RebuildError, match="recent_messages"):
            await rebuild(settings, ["chat_messages"], progress=False)
    finally:
        await db.execute("drop view recent_messages")
    assert await db.fetchval("select count(*) from pg_namespace where nspname ~ '^msgmem_(rebuild|replaced)_'") == 0


async def test_grants_policies_triggers_comments_and_publications_follow_the_swap(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await db.execute("""
        do $$ begin create role msgmem_rebuild_reader nologin; exception when duplicate_object then null; end $$;
        grant select on chat_messages to msgmem_rebuild_reader;
        create policy rebuild_readers on chat_messages for select to msgmem_rebuild_reader
            using (direction = 'inbound');
        comment on table chats is 'one row per conversation';
        alter table chat_messages replica identity full;
        create table rebuild_trigger_log (chat_key text);
        create function rebuild_log_chat() returns trigger language plpgsql as
            $f$ begin insert into rebuild_trigger_log values (new.chat_key); return new; end $f$;
        create trigger rebuild_log_chat after insert on chats for each row execute function rebuild_log_chat();
        create publication rebuild_messages for table chat_messages where (direction = 'inbound'),
            chats (chat_key, contact_name);
    """)  # fmt: skip
    try:
        chat = Chat(channel=channel())
        await produce(settings, [chat.received("m1")])
        report = await rebuild(settings, ["chat_messages"], progress=False, workers=1)
        assert only(report).swapped
        assert await db.fetchval("select count(*) from rebuild_trigger_log") == 0  # not fired by the rebuild
        assert await db.fetchval("select has_table_privilege('msgmem_rebuild_reader', 'chat_messages', 'select')")
        assert not await db.fetchval("select has_table_privilege('msgmem_rebuild_reader', 'chats', 'select')")
        policy = await db.fetchrow("select roles::text[], qual from pg_policies where policyname = 'rebuild_readers'")
        assert policy["roles"] == ["msgmem_rebuild_reader"] and "inbound" in policy["qual"]
        assert await db.fetchval("select obj_description('chats'::regclass, 'pg_class')") == "one row per conversation"
        assert await db.fetchval("select relreplident::text from pg_class where oid = 'chat_messages'::regclass") == "f"
        published = {r["tablename"]: r for r in await db.fetch(
            "select tablename, attnames::text[], rowfilter from pg_publication_tables"
            " where pubname = 'rebuild_messages'"
        )}  # fmt: skip
        assert "inbound" in published["chat_messages"]["rowfilter"]
        assert published["chats"]["attnames"] == ["chat_key", "contact_name"]
        async with projector(settings):  # the trigger fires for the live projector's rows after the swap
            await produce(settings, [Chat(channel=channel()).received("m2")])
            await caught_up(db, settings)
        assert await db.fetchval("select count(*) from rebuild_trigger_log") == 1
    finally:
        await db.execute("""
            drop publication if exists rebuild_messages;
            drop trigger if exists rebuild_log_chat on chats;
            drop function if exists rebuild_log_chat();
            drop table if exists rebuild_trigger_log;
            drop policy if exists rebuild_readers on chat_messages;
            alter table chat_messages replica identity default;
            comment on table chats is null;
            revoke all on chat_messages from msgmem_rebuild_reader;
            drop role if exists msgmem_rebuild_reader;
        """)  # fmt: skip
