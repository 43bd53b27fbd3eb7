"""Edit history through the real broker and Postgres: every version of a message's text lands in
chat_message_versions with its time, whatever the order and however often the events arrive;
chat_messages shows the latest; a deletion keeps the versions unless DELETED_MESSAGES=redact."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from contracts.settings import Settings
from tests.integration.test_projector import caught_up, channel, message, produce, projector, rows, start_at_end
from tests.unit.projections.factory import Chat, at

pytestmark = pytest.mark.integration


async def versions(db: asyncpg.Connection, chat: Chat, pmid: str) -> list[tuple[Any, ...]]:
    found = await db.fetch("select kind, text, version_at from chat_message_versions where message_id = $1"
                           " order by version_at, event_id", chat.mid(pmid))  # fmt: skip
    return [tuple(r) for r in found]


async def all_versions(db: asyncpg.Connection, chat: Chat) -> list[dict[str, Any]]:
    ids = [r["id"] for r in await rows(db, "chat_messages", [chat.key])]
    found = await db.fetch("select * from chat_message_versions where message_id = any($1::text[])"
                           " order by message_id, event_id", ids + [chat.mid("early")])  # fmt: skip
    return [{k: v for k, v in dict(r).items() if k != "created_at"} for r in found]


async def test_every_version_is_kept_in_any_order_and_a_deletion_keeps_them(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await start_at_end(db, settings)
    chat = Chat(channel=channel())
    first = [chat.edited("m1", "second", 20)]  # an edit logged before its message
    second = [chat.received("m1", "first", t=10), chat.received("img", None, t=11, message_type="image",
                                                                   caption="old caption")]  # fmt: skip
    third = [chat.edited("m1", "third", 30), chat.edited("m1", "second", 20), chat.edited("img", "new caption", 15)]
    async with projector(settings):
        for batch in (first, second, third):
            await produce(settings, batch)
            await caught_up(db, settings)
        assert await versions(db, chat, "m1") == [("original", "first", at(10)), ("edit", "second", at(20)),
                                                  ("edit", "third", at(30))]  # fmt: skip
        assert await versions(db, chat, "img") == [("original", "old caption", at(11)), ("edit", "new caption", at(15))]
        m1 = await message(db, chat.mid("m1"))
        assert (m1["body"], m1["edited_at"]) == ("third", at(30))
        assert (await message(db, chat.mid("img")))["caption"] == "new caption"
        before = await all_versions(db, chat)
        assert {(v["source_topic"], v["source_offset"] >= 0) for v in before} == {("wa.messages", True)}

        await produce(settings, [*first, *second, *third])  # a redelivery of everything
        await caught_up(db, settings)
        assert await all_versions(db, chat) == before

        await produce(settings, [chat.deleted("m1", 40)])
        await caught_up(db, settings)
        assert (await message(db, chat.mid("m1")))["deleted_at"] == at(40)
        assert await all_versions(db, chat) == before  # DELETED_MESSAGES=keep


async def test_with_redact_a_deletion_clears_every_version_in_any_order(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await start_at_end(db, settings)
    chat = Chat(channel=channel())
    async with projector(settings, deleted_messages="redact"):
        # kept, then deleted: every version goes
        await produce(settings, [chat.received("m1", "first", t=10), chat.edited("m1", "second", 20)])
        await caught_up(db, settings)
        assert len(await versions(db, chat, "m1")) == 2
        await produce(settings, [chat.deleted("m1", 30)])
        await caught_up(db, settings)
        # deleted before the message arrives (parked), and a late edit after the deletion
        await produce(settings, [chat.edited("early", "edit first", 5), chat.deleted("early", 6)])
        await caught_up(db, settings)
        await produce(settings, [chat.received("early", "the original", t=1), chat.edited("early", "late", 7),
                                 chat.edited("m1", "after the deletion", 35)])  # fmt: skip
        await caught_up(db, settings)
        # one message deleted and redelivered in the same batch as its versions
        await produce(settings, [chat.received("m2", "hello", t=1), chat.edited("m2", "hello!", 2),
                                 chat.deleted("m2", 3)])  # fmt: skip
        await caught_up(db, settings)
        await produce(settings, [chat.received("kept", "still here", t=1)])
        await caught_up(db, settings)
    for pmid in ("m1", "early", "m2"):
        assert await versions(db, chat, pmid) == [], pmid
        row = await message(db, chat.mid(pmid))
        assert (row["body"], row["deleted_at"] is not None) == (None, True), pmid
    assert await versions(db, chat, "kept") == [("original", "still here", at(1))]
