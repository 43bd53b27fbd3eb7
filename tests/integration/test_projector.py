"""The messages projector against the real broker and Postgres: wa.messages events land as
chats and chat_messages rows, idempotently and whatever the order of arrival.

Each test has topics and consumer groups of its own (the ``settings`` fixture) and uses only
chats on a channel of its own; a test that starts a second projector moves the stored offsets
to the end of wa.messages first, so that one reads only what comes next.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import TopicPartition

from contracts.deadletter import TOPIC as DEADLETTER, DeadLettered
from contracts.messages import TOPIC, MessageEvent, encode_event
from contracts.settings import Settings
from runtime.kafka import end_offsets, make_producer, read_range
from projections.batch import RetryPolicy
from projections.consumer import Running, running_projector
from projections.messages.main import PROJECTOR
from projections.messages.store import PROJECTION
from streams.normalize.logic import normalise
from tests.unit.normalize.webhooks import all_cases, delivery, fixture_bytes
from tests.unit.projections.factory import Chat, at

pytestmark = pytest.mark.integration

FAST = RetryPolicy(poison_attempts=2, min_wait=0.01, max_wait=0.5)
FIXTURE_CHANNELS = {"whapi": b"TESTCH-A1B2C", "meta": b"100000000000001", "evolution": b"acme-main"}
T = TypeVar("T")


def channel() -> str:
    return f"T{uuid.uuid4().hex[:12]}"


def fixture_events(
    provider: str, case: str, chan: str, *, replace: tuple[bytes, bytes] | None = None
) -> list[MessageEvent]:
    """A provider fixture normalised as if it came from channel ``chan`` (so its ids are the test's own)."""
    body = fixture_bytes(provider, case).replace(FIXTURE_CHANNELS[provider], chan.encode())
    if replace:
        body = body.replace(*replace)
    return normalise(delivery(provider, case, body=body, delivery_id=f"dlv-{chan}-{provider}-{case}"))


async def produce(settings: Settings, events: Iterable[MessageEvent | tuple[bytes, bytes]]) -> None:
    """Send events (or raw ``(key, value)`` pairs) to wa.messages, in order, and wait for the acks."""
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for e in events:
            key, value = e if isinstance(e, tuple) else (e.chat_key.encode(), encode_event(e))
            futures.append(await producer.send(TOPIC, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value) or time.monotonic() > deadline:
            assert check(value), f"still {value!r} after {timeout}s"
            return value
        await asyncio.sleep(0.05)


async def stored_offsets(db: asyncpg.Connection) -> dict[TopicPartition, int]:
    rows = await db.fetch("select partition, next_offset from projection_offsets where projection = $1 and topic = $2",
                          PROJECTION, TOPIC)  # fmt: skip
    return {TopicPartition(TOPIC, r["partition"]): r["next_offset"] for r in rows}


async def caught_up(db: asyncpg.Connection, settings: Settings, timeout: float = 60) -> dict[TopicPartition, int]:
    """Wait until the projector has stored offsets at the end of wa.messages; return the end offsets."""
    end = await end_offsets(settings, TOPIC)
    await eventually(lambda: stored_offsets(db),
                     lambda s: all(s.get(tp, 0) >= o for tp, o in end.items() if o), timeout)  # fmt: skip
    return end


async def start_at_end(db: asyncpg.Connection, settings: Settings) -> None:
    """Store the current end offsets, so a projector starting now reads only newer events."""
    await db.execute("truncate chat_message_pending")
    for tp, offset in (await end_offsets(settings, TOPIC)).items():
        await db.execute("insert into projection_offsets (projection, topic, partition, next_offset) "
                         "values ($1, $2, $3, $4)", PROJECTION, TOPIC, tp.partition, offset)  # fmt: skip


@asynccontextmanager
async def projector(settings: Settings, group: str | None = None, metrics_port: int | None = None,
                    **overrides: Any) -> AsyncIterator[Running]:  # fmt: skip
    configured = settings.model_copy(update={"projector_batch_timeout_ms": 50, **overrides})
    group = group or f"test-{uuid.uuid4().hex[:8]}"
    async with running_projector(configured, PROJECTOR, group=group, policy=FAST, metrics_port=metrics_port) as running:
        await asyncio.wait_for(running.projector.ready.wait(), 60)
        yield running


async def rows(db: asyncpg.Connection, table: str, chat_keys: Sequence[str]) -> list[dict[str, Any]]:
    order = "chat_key" if table == "chats" else "id"
    found = await db.fetch(f"select * from {table} where chat_key = any($1::text[]) order by {order}", list(chat_keys))
    return [{k: v for k, v in dict(r).items() if k not in ("created_at", "updated_at")} for r in found]


async def message(db: asyncpg.Connection, message_id: str) -> asyncpg.Record:
    return await eventually(lambda: db.fetchrow("select * from chat_messages where id = $1", message_id),
                            lambda r: r is not None)  # fmt: skip


# --- every provider fixture --------------------------------------------------------------------


async def test_every_provider_fixture_lands_as_the_expected_rows(settings: Settings, db: asyncpg.Connection) -> None:
    await start_at_end(db, settings)
    chan, stop_chan = channel(), channel()
    events = [e for provider, case in all_cases() for e in fixture_events(provider, case, chan)]
    text = b"Hi, is order 4271 still arriving on Thursday?"
    stop = fixture_events("whapi", "text", stop_chan, replace=(text, b"STOP"))
    async with projector(settings):
        await produce(settings, [*events, *stop])
        end = await caught_up(db, settings)
        assert await stored_offsets(db) == {tp: o for tp, o in end.items()}

    keys = sorted({e.chat_key for e in [*events, *stop]})
    messages = {r["id"]: r for r in await rows(db, "chat_messages", keys)}
    expected = {e.message_id for e in events if e.type in ("message_received", "message_sent")}
    assert set(messages) == expected | {e.message_id for e in stop if e.type == "message_received"}
    chats = {r["chat_key"]: r for r in await rows(db, "chats", keys)}

    def the(provider: str, case: str, kind: str = "message_received") -> Any:
        return next(e for e in fixture_events(provider, case, chan) if e.type == kind)

    text = messages[the("whapi", "text").message_id]
    assert (text["direction"], text["origin"], text["message_type"]) == ("inbound", "user", "text")
    assert text["body"] == "Hi, is order 4271 still arriving on Thursday?"
    assert orjson.loads(text["raw_event"])["event_id"] == the("whapi", "text").event_id
    assert (text["source_topic"], text["status"]) == (TOPIC, None)
    for provider in ("whapi", "meta", "evolution"):
        sent = messages[the(provider, "text_outbound", "message_sent").message_id]
        assert (sent["direction"], sent["origin"]) == ("outbound", "agent")
        assert sent["body"] == "Yes Dana, Thursday after 3 pm."
        assert sent["status"] == "read", provider  # delivered and read receipts (meta's batch adds a late 'sent')
        read = [e for e in fixture_events(provider, "status_update", chan) if getattr(e, "status", None) == "read"]
        assert sent["status_at"] == read[0].occurred_at
    reactions = orjson.loads(messages[the("whapi", "text_outbound", "message_sent").message_id]["reactions"])
    assert [r["emoji"] for r in reactions.values()] == ["👍"]
    image = messages[the("meta", "image_with_caption").message_id]
    assert (image["message_type"], image["caption"]) == ("image", "Here is the signed receipt")
    assert messages[the("evolution", "voice").message_id]["message_type"] == "voice"

    group_event = the("whapi", "group_text")
    group = chats[group_event.chat_key]
    assert (group["is_group"], group["group_name"], group["contact_phone"]) == (True, "Acme Deliveries Team", None)
    assert messages[group_event.message_id]["sender_id"] == "15550009012"
    dana = chats[the("whapi", "text").chat_key]
    assert (dana["contact_phone"], dana["contact_name"]) == ("15550001234", "Dana Silva")
    assert dana["consent_state"] == "unknown"
    assert dana["last_inbound_at"] == the("whapi", "link_preview").occurred_at  # the latest inbound of that chat
    assert dana["last_outbound_at"] == the("whapi", "text_outbound", "message_sent").occurred_at
    stopped = chats[stop[0].chat_key]
    assert (stopped["consent_state"], stopped["consent_changed_at"]) == ("opted_out", stop[0].occurred_at)
    assert await db.fetchval("select count(*) from chat_message_pending where chat_key = any($1::text[])", keys) == 0


async def test_the_same_events_twice_give_the_same_rows(settings: Settings, db: asyncpg.Connection) -> None:
    await start_at_end(db, settings)
    chan = channel()
    events = [e for provider, case in all_cases() for e in fixture_events(provider, case, chan)]
    keys = sorted({e.chat_key for e in events})
    async with projector(settings):
        await produce(settings, events)
        await caught_up(db, settings)
        first = (await rows(db, "chats", keys), await rows(db, "chat_messages", keys))
        await produce(settings, events)  # a redelivery of everything, appended to the log
        await caught_up(db, settings)
        second = (await rows(db, "chats", keys), await rows(db, "chat_messages", keys))
    assert len(first[1]) == len({e.message_id for e in events if e.type in ("message_received", "message_sent")})
    assert second == first


# --- order of arrival --------------------------------------------------------------------------


async def test_out_of_order_statuses_end_at_the_furthest(settings: Settings, db: asyncpg.Connection) -> None:
    await start_at_end(db, settings)
    chat = Chat(channel=channel())
    early = [chat.status("m1", "read", 30), chat.status("m1", "played", 40), chat.status("m1", "delivered", 20)]
    late = [chat.status("m2", "delivered", 20), chat.status("m2", "read", 30), chat.status("m2", "delivered", 21),
            chat.status("m2", "failed", 25), chat.status("m2", "sent", 10)]  # fmt: skip
    async with projector(settings):
        for event in early:  # one batch each: statuses for a message not stored yet
            await produce(settings, [event])
            await caught_up(db, settings)
        pending = await db.fetchrow("select * from chat_message_pending where message_id = $1", chat.mid("m1"))
        assert (pending["status"], pending["status_at"]) == ("played", at(40))
        await produce(settings, [chat.sent("m1", "voice reply", t=5, message_type="voice"), chat.sent("m2", t=6)])
        await caught_up(db, settings)
        for event in late:
            await produce(settings, [event])
        await caught_up(db, settings)
    m1, m2 = await message(db, chat.mid("m1")), await message(db, chat.mid("m2"))
    assert (m1["status"], m1["status_at"]) == ("played", at(40))
    assert (m2["status"], m2["status_at"], m2["status_error"]) == ("read", at(30), None)
    assert await db.fetchval("select count(*) from chat_message_pending where chat_key = $1", chat.key) == 0


async def test_edits_keep_the_latest_text_by_occurred_at(settings: Settings, db: asyncpg.Connection) -> None:
    await start_at_end(db, settings)
    chat = Chat(channel=channel())
    async with projector(settings):
        await produce(settings, [chat.edited("m1", "second", 20)])  # before its message
        await caught_up(db, settings)
        await produce(settings, [chat.received("m1", "original", t=1), chat.received("m2", None, t=2,
                                 message_type="image", caption="old caption")])  # fmt: skip
        await caught_up(db, settings)
        await produce(settings, [chat.edited("m1", "first", 10), chat.edited("m2", "new caption", 30)])
        await caught_up(db, settings)
    m1, m2 = await message(db, chat.mid("m1")), await message(db, chat.mid("m2"))
    assert (m1["body"], m1["edited_at"], m1["deleted_at"]) == ("second", at(20), None)
    assert (m2["body"], m2["caption"], m2["edited_at"]) == (None, "new caption", at(30))


async def test_edit_then_delete_with_redact(settings: Settings, db: asyncpg.Connection) -> None:
    await start_at_end(db, settings)
    chat = Chat(channel=channel())
    async with projector(settings, deleted_messages="redact"):
        await produce(settings, [chat.received("m1", "my card is 4111", t=1)])
        await caught_up(db, settings)
        await produce(settings, [chat.edited("m1", "my card is 4111 1111", 20)])
        await caught_up(db, settings)
        assert (await message(db, chat.mid("m1")))["body"] == "my card is 4111 1111"
        await produce(settings, [chat.deleted("m1", 30)])
        await caught_up(db, settings)
        await produce(settings, [chat.edited("m1", "late edit", 40), chat.received("m1", "my card is 4111", t=1)])
        await produce(settings, [chat.deleted("m2", 50)])  # a deletion before its message
        await caught_up(db, settings)
        await produce(settings, [chat.received("m2", "secret", t=45, caption="x")])
        await caught_up(db, settings)
    for mid, deleted in ((chat.mid("m1"), at(30)), (chat.mid("m2"), at(50))):
        row = await message(db, mid)
        assert (row["body"], row["caption"], row["transcript"], row["extracted_text"]) == (None, None, None, None)
        assert (row["deleted_at"], row["raw_event"], row["source_topic"]) == (deleted, None, TOPIC)
    assert (await message(db, chat.mid("m1")))["edited_at"] == at(40)


async def test_reactions_follow_the_latest_add_or_remove(settings: Settings, db: asyncpg.Connection) -> None:
    await start_at_end(db, settings)
    chat = Chat(channel=channel())
    async with projector(settings):
        await produce(settings, [chat.reaction("m1", None, 20)])  # the removal arrives first, before the message
        await caught_up(db, settings)
        await produce(settings, [chat.received("m1", t=1), chat.reaction("m1", "👍", 10),
                                 chat.reaction("m1", "🎉", 15, reactor="15550009999")])  # fmt: skip
        await caught_up(db, settings)
        await produce(settings, [chat.reaction("m1", "❤️", 30)])
        await caught_up(db, settings)
    reactions = orjson.loads((await message(db, chat.mid("m1")))["reactions"])
    assert {k: v["emoji"] for k, v in reactions.items()} == {"15550001234": "❤️", "15550009999": "🎉"}


async def test_consent_latest_wins_and_unsupported_messages_are_kept(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await start_at_end(db, settings)
    chat = Chat(channel=channel())
    async with projector(settings):
        await produce(settings, [chat.consent("m1", "opted_out", 20)])
        await caught_up(db, settings)
        await produce(settings, [chat.consent("m0", "opted_in", 10), chat.unsupported("p1", 30)])
        await caught_up(db, settings)
    [row] = await rows(db, "chats", [chat.key])
    assert (row["consent_state"], row["consent_changed_at"], row["last_inbound_at"]) == ("opted_out", at(20), at(30))
    poll = await message(db, chat.mid("p1"))
    assert (poll["message_type"], orjson.loads(poll["raw_event"])["raw"]) == ("unsupported", {"type": "poll"})


# --- poison, users, several projectors ---------------------------------------------------------


async def test_poison_goes_to_the_deadletter_topic_and_the_rest_is_applied(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await start_at_end(db, settings)
    chat = Chat(channel=channel())
    dead_start = await end_offsets(settings, DEADLETTER)
    key = chat.key.encode()
    batch = [chat.received("m1", t=1), (key, b"not json"), (key, b'{"type": "message_sent"}'),
             chat.received("m2", "nul \x00 byte", t=2), chat.received("m3", t=3)]  # fmt: skip
    async with projector(settings, metrics_port=0) as running:
        await produce(settings, batch)
        await caught_up(db, settings)
        await produce(settings, [chat.received("m4", t=4)])
        await caught_up(db, settings)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{running.metrics_port}/metrics")).text
    assert 'msgmem_projector_dead_lettered_total{projection="chat_messages",reason="undecodable"} 2.0' in metrics
    assert 'msgmem_projector_dead_lettered_total{projection="chat_messages",reason="refused"} 1.0' in metrics
    assert {r["id"] for r in await rows(db, "chat_messages", [chat.key])} == {chat.mid(m) for m in ("m1", "m3", "m4")}
    records = await read_range(settings, DEADLETTER, dead_start, await end_offsets(settings, DEADLETTER))
    letters = [DeadLettered.decode(r.value) for r in records if r.key == b"projector"]
    mine = [x for x in letters if x.key == key]
    assert [x.error_type for x in mine][:2] == ["EventDecodeError", "EventDecodeError"]
    assert mine[2].error_type in ("CharacterNotInRepertoireError", "UntranslatableCharacterError")  # NUL: text, jsonb
    assert [x.value for x in mine][:2] == [b"not json", b'{"type": "message_sent"}']
    assert orjson.loads(mine[2].value)["message_id"] == chat.mid("m2")
    assert len({x.offset for x in mine}) == 3 and all(x.topic == TOPIC for x in mine)


async def test_chats_link_to_the_users_table_by_phone_digits(settings: Settings, db: asyncpg.Connection) -> None:
    await start_at_end(db, settings)
    table = f"users_{uuid.uuid4().hex[:8]}"
    await db.execute(f"create table {table} (id bigint primary key, phone text)")
    await db.execute(f"insert into {table} values (7, '+1 555-000-1234'), (8, '+1 555 000 5678')")
    dana, ravi = Chat(channel=channel()), Chat(channel=channel(), chat_id="15550005678")
    nobody = Chat(channel=channel(), chat_id="1999")
    try:
        async with projector(settings, users_table=table):
            await produce(settings, [dana.received("m1"), ravi.status("m2", "read", 1), nobody.received("m3")])
            await caught_up(db, settings)
    finally:
        await db.execute(f"drop table {table}")
    users = {r["chat_key"]: r["user_id"] for r in await rows(db, "chats", [dana.key, ravi.key, nobody.key])}
    assert users == {dana.key: "7", ravi.key: "8", nobody.key: None}


async def test_two_projectors_in_one_group_share_the_work_without_duplicates(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await start_at_end(db, settings)
    chats = [Chat(channel=channel(), chat_id=f"1555{n:07d}") for n in range(24)]
    group = f"test-shared-{uuid.uuid4().hex[:8]}"

    def wave(w: int) -> list[MessageEvent]:
        return [c.received(f"m{w}-{i}", f"text {w}-{i}", t=w * 100 + i) for i in range(50) for c in chats]

    async with projector(settings, group=group, projector_batch_size=200) as first:
        await produce(settings, wave(0))
        async with projector(settings, group=group, projector_batch_size=200) as second:
            await produce(settings, wave(1))  # a rebalance shares the partitions while this is applied
            await caught_up(db, settings)
            await produce(settings, wave(2))
        await produce(settings, wave(3))  # the second leaves: its partitions go back to the first
        await caught_up(db, settings)
    labels = {"projection": PROJECTION}
    applied = sum(r.metrics.registry.get_sample_value("msgmem_projector_events_applied_total", labels) or 0
                  for r in (first, second))  # fmt: skip
    assert await db.fetchval("select count(*) from chat_messages where chat_key = any($1::text[])",
                             [c.key for c in chats]) == applied == 4 * 50 * 24  # fmt: skip
