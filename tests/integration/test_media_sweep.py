"""The retention sweep against the real Postgres: expired objects are deleted from the store and
their chat_media rows marked expired, except an object another row still keeps in retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from streams.media.sweep import sweep_expired
from runtime.media_storage import LocalMediaStore
from tests.fakes.events import put_fixture

pytestmark = pytest.mark.integration

NOW = datetime(2027, 3, 1, tzinfo=UTC)


async def row(db: asyncpg.Connection, media_id: str, path: str, expires_at: datetime | None, status: str = "stored",
              bucket: str = "chat-media") -> None:  # fmt: skip
    await db.execute(
        "insert into chat_media (id, message_id, chat_key, kind, bucket, path, status, stored_at, expires_at) "
        "values ($1, $1, 'whapi:TEST:1', 'voice', $2, $3, $4, $5, $6)",
        media_id, bucket, path, status, NOW - timedelta(days=100), expires_at,
    )  # fmt: skip


async def test_expired_media_are_deleted_and_marked(db: asyncpg.Connection, tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "media", "chat-media")
    voice = await put_fixture(store, "voice_note.ogg")
    photo = await put_fixture(store, "receipt_photo.jpg")
    pdf = await put_fixture(store, "invoice_text.pdf")
    await row(db, "old-voice", voice, NOW - timedelta(days=1))
    await row(db, "old-photo", photo, NOW - timedelta(days=2))
    await row(db, "new-photo", photo, NOW + timedelta(days=30))  # the same file sent again later
    await row(db, "kept-pdf", pdf, None)  # retention 0: kept forever
    await row(db, "other-bucket", voice, NOW - timedelta(days=5), bucket="elsewhere")

    report = await sweep_expired(db, store, now=NOW, batch_size=1)

    assert (report.rows_expired, report.objects_deleted, report.objects_kept) == (2, 1, 1)
    assert await store.size(voice) is None and await store.size(photo) is not None and await store.size(pdf) is not None
    statuses = dict(await db.fetch("select id, status from chat_media"))
    assert statuses == {"old-voice": "expired", "old-photo": "expired", "new-photo": "stored", "kept-pdf": "stored",
                        "other-bucket": "stored"}  # fmt: skip
    assert await sweep_expired(db, store, now=NOW) == type(report)()  # nothing left to do
