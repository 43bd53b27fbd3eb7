"""The retention sweep against the real broker and Postgres: expired objects are deleted from the
store, except an object another row still keeps in retention, and a MediaExpired per expired row
is appended to wa.media. The sweep writes no table: chat_media changes only when the media
projector applies those events. A sweep that dies between deleting and appending, a repeated
sweep and concurrent sweepers all end in the same rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from contracts import media
from contracts.media import MediaExpired, MediaStored
from contracts.settings import Settings
from runtime.kafka import end_offsets
from runtime.media_storage import LocalMediaStore
from streams.common.outputs import KafkaOutputs
from streams.common.records import Output
from streams.media.sweep import SweepReport, sweep_expired
from tests.fakes.events import put_fixture
from tests.integration.test_media_projection import media_caught_up, media_projection, publish, ready
from tests.integration.test_projector import channel
from tests.unit.projections.factory import Chat, at
from tests.unit.projections.test_media_rows import Media
from tests.waiting import read_since

pytestmark = pytest.mark.integration

NOW = at(0) + timedelta(days=100)


@asynccontextmanager
async def kafka_outputs(settings: Settings) -> AsyncIterator[KafkaOutputs]:
    writer = await KafkaOutputs.start(settings)
    try:
        yield writer
    finally:
        await writer.stop()


async def sweep(settings: Settings, conn: asyncpg.Connection, store: LocalMediaStore, **options: int) -> SweepReport:
    async with kafka_outputs(settings) as outputs:
        return await sweep_expired(conn, store, outputs, now=NOW, **options)


async def statuses(db: asyncpg.Connection, chat: Chat) -> dict[str, str]:
    rows = await db.fetch("select id, status from chat_media where chat_key = $1", chat.key)
    return {r["id"]: r["status"] for r in rows}


async def expiries(settings: Settings, start: dict, chat: Chat) -> list[MediaExpired]:  # type: ignore[type-arg]
    """The MediaExpired records of ``chat`` on wa.media since ``start``, checked as the stages read them."""
    found = []
    for record in await read_since(settings, media.TOPIC, start):
        event = media.decode_event(record.value)
        if isinstance(event, MediaExpired) and event.chat_key == chat.key:
            assert record.key == chat.key.encode() and dict(record.headers)["mm-type"] == b"media_expired"
            found.append(event)
    return found


async def store_with(tmp_path: Path, *files: str) -> tuple[LocalMediaStore, list[str]]:
    """A local store holding these fixture files; their paths."""
    store = LocalMediaStore(tmp_path / "media", "chat-media")
    return store, [await put_fixture(store, name) for name in files]


async def stored_rows(settings: Settings, db: asyncpg.Connection, events: Sequence[MediaStored]) -> None:
    """chat_media rows as the media projector writes them from MediaStored events."""
    await ready(db, settings)
    async with media_projection(settings):
        await publish(settings, events)
        await media_caught_up(db, settings)


async def test_expired_media_are_deleted_and_their_expiry_is_logged_for_the_projector(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    store, (voice, photo, pdf) = await store_with(tmp_path, "voice_note.ogg", "receipt_photo.jpg", "invoice_text.pdf")
    chat = Chat(channel=channel())
    image = {"kind": "image", "mime": "image/jpeg"}
    old_voice, old_photo, new_photo = Media(chat, "old-voice"), Media(chat, "old-photo", **image), Media(chat, "new-photo", **image)
    kept_pdf, elsewhere = Media(chat, "kept-pdf", kind="document", mime="application/pdf"), Media(chat, "other-bucket")
    await stored_rows(settings, db, [
        old_voice.stored(0, path=voice, days=99), old_photo.stored(0, path=photo, days=98),
        new_photo.stored(0, path=photo, days=130),  # the same file sent again later
        kept_pdf.stored(0, path=pdf, days=None),  # retention 0: kept forever
        elsewhere.stored(0, path=voice, days=95, bucket="elsewhere"),
    ])  # fmt: skip
    start = await end_offsets(settings, media.TOPIC)

    report = await sweep(settings, db, store, batch_size=1)

    assert (report.rows_expired, report.objects_deleted, report.objects_kept) == (2, 1, 1)
    assert await store.size(voice) is None and await store.size(photo) is not None and await store.size(pdf) is not None
    assert set((await statuses(db, chat)).values()) == {"stored"}  # the sweep wrote no row
    logged = {e.media_id: e for e in await expiries(settings, start, chat)}
    assert set(logged) == {old_voice.media_id, old_photo.media_id}
    assert logged[old_voice.media_id].object_deleted and not logged[old_photo.media_id].object_deleted
    assert (logged[old_voice.media_id].path, logged[old_voice.media_id].stored_at) == (voice, at(0))
    assert logged[old_voice.media_id].delivery_id == media.SWEEP_DELIVERY

    async with media_projection(settings):
        await media_caught_up(db, settings)
    assert await statuses(db, chat) == {
        old_voice.media_id: "expired", old_photo.media_id: "expired", new_photo.media_id: "stored",
        kept_pdf.media_id: "stored", elsewhere.media_id: "stored",
    }  # fmt: skip
    [row] = await db.fetch("select * from chat_media where id = $1", old_voice.media_id)
    assert (row["path"], row["stored_at"], row["error"]) == (voice, at(0), None)
    assert await sweep(settings, db, store) == SweepReport()  # nothing left to do


class Crash(Exception):
    """The sweeper dies after deleting, before its events are appended."""


class CrashingOutputs:
    async def write(self, outputs: Sequence[Output]) -> None:
        raise Crash

    async def write_groups(self, groups: Sequence[Sequence[Output]]) -> dict:  # type: ignore[type-arg]
        raise Crash


async def test_a_sweep_that_died_before_appending_is_repeated_with_the_same_events(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    store, [voice] = await store_with(tmp_path, "voice_note.ogg")
    chat = Chat(channel=channel())
    old = Media(chat, "old-voice")
    await stored_rows(settings, db, [old.stored(0, path=voice, days=99)])
    start = await end_offsets(settings, media.TOPIC)

    with pytest.raises(Crash):
        await sweep_expired(db, store, CrashingOutputs(), now=NOW)
    assert await store.size(voice) is None and await expiries(settings, start, chat) == []
    assert await statuses(db, chat) == {old.media_id: "stored"}

    assert (await sweep(settings, db, store)).rows_expired == 1  # the next sweep deletes again (a no-op) and appends
    assert (await sweep(settings, db, store)).rows_expired == 1  # the projector has not applied it yet: again
    first, again = await expiries(settings, start, chat)
    assert first.event_id == again.event_id == media.expired_event_id(old.media_id, at(0))
    async with media_projection(settings):
        await media_caught_up(db, settings)
    assert await statuses(db, chat) == {old.media_id: "expired"}
    assert await sweep(settings, db, store) == SweepReport()


async def test_concurrent_sweepers_expire_every_row_once_between_them(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    store, (voice, photo) = await store_with(tmp_path, "voice_note.ogg", "receipt_photo.jpg")
    chat = Chat(channel=channel())
    old = [Media(chat, f"old-{n}") for n in range(8)]
    kept = Media(chat, "kept", kind="image", mime="image/jpeg")
    await stored_rows(settings, db, [m.stored(0, path=photo if n % 2 else voice, days=90 + n) for n, m in enumerate(old)]
                      + [kept.stored(0, path=photo, days=120)])  # fmt: skip
    start = await end_offsets(settings, media.TOPIC)

    other = await asyncpg.connect(settings.database_url)
    try:
        reports = await asyncio.gather(sweep(settings, db, store, batch_size=1), sweep(settings, other, store, batch_size=1))
    finally:
        await other.close()

    assert sum(r.rows_expired for r in reports) >= len(old)  # a sweeper that found the lock taken stopped
    assert {e.media_id for e in await expiries(settings, start, chat)} == {m.media_id for m in old}
    assert await store.size(voice) is None and await store.size(photo) is not None  # photo: still kept in retention
    async with media_projection(settings):
        await media_caught_up(db, settings)
    assert await statuses(db, chat) == {m.media_id: "expired" for m in old} | {kept.media_id: "stored"}
