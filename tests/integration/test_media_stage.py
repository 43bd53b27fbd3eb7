"""The media worker (a real Faust process) downloads media from the fake provider server
(Whapi and Meta Graph protocols, Bearer checks), stores them by content in the local store,
and writes MediaStored / MediaFailed on wa.media; a provider that keeps failing ends in
wa.deadletter after MEDIA_MAX_ATTEMPTS, and a non-allow-listed URL is never requested. The
worker's periodic retention sweep deletes what is past its retention and logs a MediaExpired
for it (the media projector, not running here, makes the row 'expired')."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import asyncpg
import pytest

from contracts import deadletter, media, messages
from contracts.deadletter import DeadLettered
from contracts.envelope import EventDecodeError
from contracts.settings import Settings
from runtime.kafka import end_offsets, make_producer
from runtime.media_storage import LocalMediaStore
from tests.fakes.events import media_message, put_fixture, sha256_file, with_media
from tests.fakes.provider_media import FakeProviderMedia
from tests.fakes.server import ThreadedServer
from tests.fakes.stages import running_stage
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration


async def test_media_are_downloaded_verified_and_stored(settings: Settings, tmp_path: Path, db: asyncpg.Connection) -> None:
    run = uuid.uuid4().hex[:8]
    fake = FakeProviderMedia()
    fake.fail(status=503, times=None, key="mp4-2c3d4e5f60718293a4b5c6d7")  # the whapi video never comes
    cases = {
        "voice": (media_message("whapi", "voice"), "voice_note.ogg"),
        "image": (media_message("meta", "image_with_caption"), "receipt_photo.jpg"),
        "pdf": (media_message("meta", "document_pdf"), "invoice_text.pdf"),
        "sticker": (media_message("whapi", "sticker"), "sticker.webp"),
    }
    crafted = with_media(media_message("whapi", "audio"), provider_media_id=None, url="http://127.0.0.1:1/internal")
    failing = media_message("whapi", "video")
    events = [e for e, _ in cases.values()] + [crafted, failing]
    events = [e.model_copy(update={"provider_message_id": f"{run}-{e.provider_message_id}",
                                   "message_id": f"{run}-{e.message_id}"}) for e in events]  # fmt: skip
    ids = {e.message_id: name for e, name in zip(events, [*cases, "crafted", "failing"])}

    start_media = await end_offsets(settings, media.TOPIC)
    start_dead = await end_offsets(settings, deadletter.TOPIC)
    producer = make_producer(settings)
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(messages.TOPIC, messages.encode_event(e), key=e.chat_key.encode(),
                                         headers=[("mm-type", e.type.encode())])  # fmt: skip
    finally:
        await producer.stop()

    media_dir = tmp_path / "media"
    expired = await put_fixture(LocalMediaStore(media_dir, "chat-media"), "receipt_scanned.pdf")
    # A row as the media projector leaves it after a MediaStored, 90 days old.
    await db.execute(
        "insert into chat_media (id, message_id, chat_key, kind, bucket, path, status, stored_at, expires_at) "
        "values ($1, $1, 'whapi:TEST:1', 'audio', 'chat-media', $2, 'stored', now() - interval '91 days',"
        " now() - interval '1 day')",
        f"{run}-expired", expired,
    )  # fmt: skip
    with ThreadedServer(fake.app) as url, running_stage(
        "streams.media", settings, tmp_path, WHAPI_API_URL=url, WHAPI_API_TOKEN="test-whapi-token", META_GRAPH_URL=url,
        META_ACCESS_TOKEN="test-access-token", MEDIA_TRUSTED_ORIGINS=url, MEDIA_LOCAL_DIR=str(media_dir), MEDIA_RETRY_MIN_SECONDS="0.05",
        MEDIA_RETRY_MAX_SECONDS="0.2", MEDIA_SWEEP_INTERVAL_SECONDS="1",
    ):  # fmt: skip

        async def outcomes() -> dict[str, media.MediaEvent]:
            found = [media.decode_event(r.value) for r in await read_since(settings, media.TOPIC, start_media)]
            mine = {ids[e.message_id]: e for e in found if e.message_id in ids}
            return mine if len(mine) == len(ids) else {}

        got = await eventually(outcomes, timeout=60)

        async def swept() -> bool:
            logged = [media.decode_event(r.value) for r in await read_since(settings, media.TOPIC, start_media)]
            expiry = [e for e in logged if isinstance(e, media.MediaExpired) and e.media_id == f"{run}-expired"]
            return bool(expiry) and expiry[0].object_deleted and not (media_dir / expired).exists()

        await eventually(swept, timeout=30)
        letters = [DeadLettered.decode(r.value) for r in await read_since(settings, deadletter.TOPIC, start_dead)]

    for name, (_event, file) in cases.items():
        stored = got[name]
        assert isinstance(stored, media.MediaStored), (name, stored)
        assert stored.sha256 == sha256_file(file) and stored.storage == "local" and stored.bucket == "chat-media"
        assert hashlib.sha256((media_dir / stored.path).read_bytes()).hexdigest() == sha256_file(file)
        assert stored.expires_at is not None and (stored.expires_at - stored.stored_at).days == 90
    assert got["crafted"].reason == "host_not_allowed"  # type: ignore[union-attr]
    assert not fake.calls("/internal")
    failed = got["failing"]
    assert isinstance(failed, media.MediaFailed) and failed.reason == "download_failed" and not failed.final
    video_calls = len(fake.calls("/media/mp4-"))
    assert video_calls > 0 and video_calls % 3 == 0  # 3 attempts (a rebalance re-delivering it would try 3 more)
    [letter, *_] = [d for d in letters if d.stage == "media" and _message_id(d) in ids]
    assert letter.attempts == 3 and letter.topic == messages.TOPIC and "503" in letter.error
    assert {c.path.split("/")[1] for c in fake.calls(ok_only=True)} == {"media", "v21.0", "cdn"}


def _message_id(letter: DeadLettered) -> str | None:
    """The message a media letter is about; None for poison (another test's record the worker read too)."""
    try:
        return messages.decode_event(letter.value).message_id
    except EventDecodeError:
        return None
