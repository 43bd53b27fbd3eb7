"""``msgmem projections rebuild media`` against the real broker and Postgres: chat_media rebuilt
from wa.media and the enrichment topics beside the live messages and media projectors, compared
and swapped in; and chat_messages' text from media, which both projections write, the same
whether media, messages or both are rebuilt.

Each test has topics of its own (the ``settings`` fixture) and the ``db`` fixture empties the
tables and ``projection_offsets``, so the live projectors and the rebuild read the same logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from contracts import media
from contracts.settings import Settings
from projections.media.logic import MediaProjectionEvent
from projections.rebuild.run import rebuild
from tests.integration.test_media_projection import both_caught_up, media_message, media_projection, publish
from tests.integration.test_projector import channel, produce, projector
from tests.integration.test_rebuild import oids, only, table_rows
from tests.unit.projections.factory import Chat
from tests.unit.projections.test_media_rows import Media
from tests.waiting import eventually

pytestmark = pytest.mark.integration

TABLES = ("chat_media", "chat_messages")


class Workload:
    """Media messages of every kind and every outcome, with results logged before their media
    and their message, a re-run by another model, a duplicate, a caption edited away, a
    deletion, a result for a message never logged, and a record that does not decode."""

    def __init__(self, chan: str) -> None:
        self.chat, other = Chat(channel=chan), Chat(channel=chan, chat_id="15550009999")
        c = self.chat
        self.voice, self.lost, self.unset = Media(c, "v1"), Media(c, "v2"), Media(c, "v3")
        self.photo, self.signed, self.broken = (Media(c, p, kind="image", mime="image/jpeg") for p in ("i1", "i2", "i3"))
        self.pdf, self.orphan = Media(c, "d1", kind="document", mime="application/pdf"), Media(other, "v9")
        self.early: list[MediaProjectionEvent] = [self.pdf.extracted("INVOICE 2026-0193", 5, pages=2)]
        self.messages = [
            media_message(self.voice, 1), media_message(self.photo, 2),
            media_message(self.signed, 3, "Here is the signed receipt"), media_message(self.pdf, 4, "Invoice"),
            media_message(self.lost, 5), media_message(self.unset, 6), media_message(self.broken, 7),
            c.received("t1", "a plain text", t=8), c.edited("i2", None, 30), c.deleted("v1", 40),
        ]  # fmt: skip
        v, p, s, b = self.voice, self.photo, self.signed, self.broken
        self.results: list[MediaProjectionEvent | tuple[str, bytes, bytes]] = [
            v.stored(10), v.transcribed("Hi, this is Dana.", 20), v.transcribed("Hi, this is Dana!", 25, model="better"),
            v.transcribed("Hi, this is Dana.", 20), p.stored(11), p.captioned("A receipt on a table.", 21),
            s.stored(12), s.captioned("A signed receipt.", 22), self.pdf.stored(13, page_count=None),
            self.lost.failed(14), self.lost.stored(15), self.unset.media_skipped(16), self.unset.skipped(17),
            b.stored(18), b.enrichment_failed(19), self.orphan.transcribed("Nobody logged this message.", 24),
            (media.TOPIC, c.key.encode(), b"not json"),
        ]  # fmt: skip

    async def feed(self, settings: Settings, db: asyncpg.Connection) -> None:
        """Log it all and wait until the live messages and media projectors have applied it."""
        await publish(settings, self.early)
        await produce(settings, self.messages)
        await publish(settings, self.results)
        await both_caught_up(db, settings)


def by_id(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


async def test_a_media_rebuild_equals_the_live_table_and_is_swapped_in_while_both_projectors_run(
    settings: Settings, db: asyncpg.Connection
) -> None:
    w = Workload(channel())
    async with projector(settings), media_projection(settings):
        await w.feed(settings, db)
        before, old = await table_rows(db, TABLES), await oids(db, TABLES)
        messages, media_rows = by_id(before["chat_messages"]), by_id(before["chat_media"])
        assert len(media_rows) == 8 and w.orphan.media_id in media_rows
        assert messages[w.voice.message_id]["transcript"] == "Hi, this is Dana!"
        assert (messages[w.photo.message_id]["caption"], messages[w.photo.message_id]["caption_generated"]) == (
            "A receipt on a table.", True)  # fmt: skip
        assert (messages[w.signed.message_id]["caption"], messages[w.signed.message_id]["caption_generated"]) == (
            "A signed receipt.", True)  # the sender's caption edited away: the AI's takes its place  # fmt: skip
        assert messages[w.pdf.message_id]["extracted_text"] == "INVOICE 2026-0193"

        report = await rebuild(settings, ["media"], progress=False, workers=2)
        p = only(report)
        assert p.swapped and p.match and report.exit_code == 0, p
        [c] = p.comparisons
        assert (c.table, c.live, c.live.rows) == ("chat_media", c.rebuilt, 8)
        assert p.undecodable == 1 and p.events == len(w.early) + len(w.results)
        assert "took" not in p.outcome  # chat_messages already held what the rebuilt chat_media implies
        assert await table_rows(db, TABLES) == before
        new = await oids(db, TABLES)
        assert new["chat_media"] != old["chat_media"] and new["chat_messages"] == old["chat_messages"]
        indexes = {r["indexname"] for r in await db.fetch("select indexname from pg_indexes where tablename = 'chat_media'")}
        assert {"chat_media_pkey", "chat_media_message_idx", "chat_media_expires_idx"} <= indexes
        assert await db.fetchval("select count(*) from pg_namespace where nspname ~ '^msgmem_(rebuild|replaced)_'") == 0

        # the live media projector goes on, into the new table, and on to chat_messages
        await publish(settings, [w.broken.captioned("A cracked screen.", 50)])
        await both_caught_up(db, settings)
        row = await eventually(lambda: db.fetchrow("select caption from chat_messages where id = $1",
                                                   w.broken.message_id))  # fmt: skip
        assert row["caption"] == "A cracked screen."


@pytest.mark.parametrize("deleted", ["keep", "redact"])
async def test_chat_messages_text_from_media_is_the_same_whichever_projection_is_rebuilt(
    settings: Settings, db: asyncpg.Connection, deleted: str
) -> None:
    settings = settings.model_copy(update={"deleted_messages": deleted})  # the projectors' and the rebuild's
    w = Workload(channel())
    async with projector(settings), media_projection(settings):
        await w.feed(settings, db)
    truth = await table_rows(db, TABLES)
    # chat_media lost a caption; chat_messages holds texts no chat_media row backs
    await db.execute("update chat_media set caption = null, caption_model = null, caption_at = null where id = $1",
                     w.photo.media_id)  # fmt: skip
    await db.execute("update chat_messages set transcript = 'stale' where id = $1", w.unset.message_id)
    await db.execute("update chat_messages set extracted_text = 'not backed' where id = $1", w.chat.mid("t1"))
    tampered = await table_rows(db, TABLES)
    voice = by_id(truth["chat_messages"])[w.voice.message_id]  # deleted: redacted, its text never copied again
    assert voice["transcript"] == (None if deleted == "redact" else "Hi, this is Dana!")

    dry = only(await rebuild(settings, ["chat_media"], progress=False, dry_run=True))
    [c] = dry.comparisons
    assert not dry.swapped and (c.changed, c.only_live, c.only_rebuilt) == (1, 0, 0)
    assert [(d.key, d.columns) for d in c.samples] == [({"id": w.photo.media_id}, ("caption", "caption_model",
                                                                                    "caption_at"))]  # fmt: skip
    assert await table_rows(db, TABLES) == tampered  # a dry run writes nothing, chat_messages included

    repaired = only(await rebuild(settings, ["chat_media"], progress=False))
    assert repaired.swapped and not repaired.match
    assert "2 chat_messages rows took the rebuilt chat_media's text" in repaired.outcome
    assert await table_rows(db, TABLES) == truth

    # messages alone, then every projection with a live projector here (not dead_letters): nothing differs
    for names in (["messages"], ["messages", "media", "embeddings"]):
        report = await rebuild(settings, names, progress=False)
        assert all(p.swapped and p.match for p in report.projections), [
            (p.projection, p.swapped, p.match, p.outcome, p.warnings) for p in report.projections]
        assert await table_rows(db, TABLES) == truth
    assert [p.projection for p in report.projections] == ["chat_messages", "chat_media", "message_embeddings"]
