"""The console's searches on the real Postgres, against what they must mean: chats by a name
fragment (anywhere, any case, accents too) or by the start of the phone digits, narrowed
through the three-character pieces index of migration 0015 (results equal to a plain check of
every chat); the filters' provider/channel pairs read by a skip scan; and recall by words in
a chat past ``exact_rows`` (the GIN path), which ranks a bounded number of messages yet
always finds the one holding the order number or every word of the question."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from projections.recall import memory

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PEOPLE = [
    ("Dana Silva", "4915112345678"), ("dana SCHMIDT", "4915199990000"), ("Jörg Müller", "491761234567"),
    ("María García", "34600111222"), ("Omar 100% Haddad", "447700900123"), ("Lena_Novak", "14155550123"),
    ("Ravi Patel", "919876543210"), (None, "5511987654321"), ("Sofia Rossi", None),
]  # fmt: skip


async def seed_chats(db: asyncpg.Connection) -> None:
    rows = []
    for i, (name, phone) in enumerate(PEOPLE):
        channel = "CH-A" if i % 2 else "CH-B"
        rows.append((f"whapi:{channel}:{phone or i}", "whapi", channel, phone or f"lid{i}", phone, name, False, None,
                     T0 + timedelta(minutes=i)))  # fmt: skip
    rows.append(("meta_cloud:PN-1:120363001", "meta_cloud", "PN-1", "120363001", None, None, True, "Warehouse Dana team",
                 T0 + timedelta(minutes=30)))  # fmt: skip
    await db.copy_records_to_table("chats", records=rows, columns=[
        "chat_key", "provider", "channel_id", "chat_id", "contact_phone", "contact_name", "is_group", "group_name",
        "last_message_at"])  # fmt: skip
    await db.execute("analyze chats")


def expected(text: str) -> list[str]:
    """What browse_chats must answer for ``text``, checked chat by chat, newest first."""
    t = text.strip().lower()
    digits = "".join(c for c in text if c.isdigit())
    found = []
    for i, (name, phone) in enumerate(PEOPLE):
        if (name and t in name.lower()) or (digits and phone and phone.startswith(digits)):
            found.append((T0 + timedelta(minutes=i), f"whapi:{'CH-A' if i % 2 else 'CH-B'}:{phone or i}"))
    if t in "warehouse dana team":
        found.append((T0 + timedelta(minutes=30), "meta_cloud:PN-1:120363001"))
    return [key for _, key in sorted(found, reverse=True)]


async def test_chats_by_name_or_phone_through_the_pieces_index_match_a_plain_check(db: asyncpg.Connection) -> None:
    await seed_chats(db)
    for text in ("dana", "DANA s", "müller", "MÜLL", "garcía", "100%", "_nov", "lena_", "4915", "+49 151 12",
                 "49176", "447700", "da", "9", "ana ", "team", "nobody", "ravi patel", "5511"):  # fmt: skip
        sql, args = memory.browse_statement(text, limit=50)
        got = [r["chat_key"] for r in await db.fetch(sql, *args)]
        assert got == expected(text), text


async def test_a_fragment_of_three_characters_or_more_uses_the_index(db: asyncpg.Connection) -> None:
    await seed_chats(db)
    async with db.transaction():  # ten chats: the planner would rather read them all, unless told not to
        await db.execute("set local enable_seqscan = off")
        await db.execute("set local enable_indexscan = off")
        for text in ("silva", "+49 151"):
            sql, args = memory.browse_statement(text, limit=50)
            plan = "\n".join(r[0] for r in await db.fetch(f"explain {sql}", *args))
            assert "chats_search_pieces_idx" in plan, plan


async def test_filters_and_paging_and_the_provider_channel_pairs(db: asyncpg.Connection) -> None:
    await seed_chats(db)
    sql, args = memory.browse_statement("dana", provider="whapi", channel="CH-A", limit=50)
    assert [r["chat_key"] for r in await db.fetch(sql, *args)] == ["whapi:CH-A:4915199990000"]
    pages, after = [], None
    while True:
        sql, args = memory.browse_statement(limit=4, after=after)
        rows = await db.fetch(sql, *args)
        pages.append([r["chat_key"] for r in rows])
        if len(rows) < 4:
            break
        after = (rows[-1]["activity"], rows[-1]["chat_key"])
    everything = [r["chat_key"] for r in await db.fetch(
        "select chat_key from chats order by coalesce(last_message_at, created_at) desc, chat_key desc")]  # fmt: skip
    assert [k for page in pages for k in page] == everything
    pairs = [tuple(r) for r in await db.fetch(memory.PROVIDERS_SQL)]
    assert pairs == [tuple(r) for r in await db.fetch(
        "select distinct provider, channel_id from chats order by provider, channel_id")]  # fmt: skip
    assert pairs == [("meta_cloud", "PN-1"), ("whapi", "CH-A"), ("whapi", "CH-B")]


async def test_recall_in_a_large_chat_ranks_a_bounded_set_yet_finds_the_number_and_every_word(
    db: asyncpg.Connection,
) -> None:  # fmt: skip
    key = "whapi:CH-BIG:15550001234"
    await db.execute("insert into chats (chat_key, provider, channel_id, chat_id) values ($1, 'whapi', 'CH-BIG', "
                     "'15550001234')", key)  # fmt: skip
    texts = [("old-number", "Where is order 4271? The parcel is late"), ("old-both", "the refund for my parcel")]
    texts += [(f"n{i:05d}", f"parcel update number {i} for you") for i in range(2500)]  # newer, a common word
    rows = [(f"m-{pid}", key, "whapi", "CH-BIG", pid, "user", "inbound", "text", body, T0 + timedelta(seconds=i),
             T0 + timedelta(seconds=i)) for i, (pid, body) in enumerate(texts)]  # fmt: skip
    await db.copy_records_to_table("chat_messages", records=rows, columns=[
        "id", "chat_key", "provider", "channel_id", "provider_message_id", "origin", "direction", "message_type", "body",
        "provider_timestamp", "received_at"])  # fmt: skip
    await db.execute("analyze chat_messages")

    async def hits(question: str) -> list[str]:
        return [r["message_id"] for r in await db.fetch("select * from match_session_texts($1, $2, 30, 0)", key,
                                                         question)]  # fmt: skip

    assert (await hits("order 4271"))[0] == "m-old-number"  # older than 2,500 newer "parcel" messages
    assert (await hits("refund parcel"))[0] == "m-old-both"
    common = await hits("parcel")
    assert len(common) == 30 and "m-old-number" not in common  # only the newest 1,000 holders are ranked
    assert await hits("zebra") == []
