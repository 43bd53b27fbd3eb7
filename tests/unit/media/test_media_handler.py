"""The media handler against the fake provider media server on a real socket and a local store:
Whapi, Meta (two steps) and Evolution downloads, hash checks, the size cap, the allow-list
(redirects included), reuse of stored objects, and transient versus final failures."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from contracts import media
from contracts.settings import Settings
from msgmem.http_server import serving
from streams.common.runner import TransientError
from streams.media.agent import MediaHandler, MediaMetrics
from streams.media.providers import Fetcher
from streams.media.storage import LocalMediaStore
from tests.fakes.events import media_message, message_events, message_record, sha256_file, with_media
from tests.fakes.provider_media import FakeProviderMedia


@pytest.fixture
async def provider() -> AsyncIterator[tuple[FakeProviderMedia, str]]:
    fake = FakeProviderMedia()
    async with serving(fake.app) as url:
        yield fake, url


def settings_for(url: str, tmp_path: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "whapi_api_url": url, "whapi_api_token": "test-whapi-token", "meta_graph_url": url,
        "meta_access_token": "test-access-token", "evolution_api_url": url, "evolution_api_key": "test-evolution-apikey",
        "media_local_dir": tmp_path / "media", "media_max_bytes": 1024 * 1024,
    }  # fmt: skip
    return Settings(_env_file=None, **(values | extra))  # type: ignore[call-arg]


@pytest.fixture
async def handler(provider: tuple[FakeProviderMedia, str], tmp_path: Path) -> AsyncIterator[MediaHandler]:
    _fake, url = provider
    settings = settings_for(url, tmp_path)
    store = LocalMediaStore(settings.media_dir, settings.media_bucket)
    async with httpx.AsyncClient(timeout=5) as client:
        yield MediaHandler(settings, store, Fetcher(client, settings.media_max_bytes), MediaMetrics(CollectorRegistry()))


async def run(handler: MediaHandler, event) -> media.MediaEvent:  # type: ignore[no-untyped-def]
    [out] = await handler(message_record(event))
    assert out.topic == media.TOPIC and out.key == event.chat_key.encode()
    return media.decode_event(out.value)


@pytest.mark.parametrize(
    ("provider_name", "case", "file"),
    [("whapi", "voice", "voice_note.ogg"), ("meta", "image_with_caption", "receipt_photo.jpg"),
     ("meta", "document_pdf", "invoice_text.pdf"), ("evolution", "voice", "voice_note.ogg"),
     ("whapi", "sticker", "sticker.webp"), ("meta", "video", "video_clip.mp4")],
)  # fmt: skip
async def test_downloads_are_verified_and_stored_by_content(
    handler: MediaHandler, provider_name: str, case: str, file: str
) -> None:
    stored = await run(handler, media_message(provider_name, case))
    assert isinstance(stored, media.MediaStored), stored
    assert stored.sha256 == sha256_file(file) and not stored.reused
    on_disk = handler.store.root / stored.path  # type: ignore[attr-defined]
    assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == sha256_file(file)
    assert stored.path.startswith(f"{stored.sha256[:2]}/{stored.sha256[2:4]}/{stored.sha256}")
    assert not list(handler.store.staging_dir.iterdir())  # nothing left behind


async def test_meta_needs_the_bearer_token_on_both_steps(provider: tuple[FakeProviderMedia, str], handler: MediaHandler) -> None:
    fake, _url = provider
    await run(handler, media_message("meta", "voice"))
    steps = [(c.path.split("/")[1], c.status) for c in fake.calls()]
    assert steps == [("v21.0", 200), ("cdn", 200)]


async def test_a_duplicate_is_verified_again_but_stored_once(
    provider: tuple[FakeProviderMedia, str], handler: MediaHandler
) -> None:
    fake, _url = provider
    first = await run(handler, media_message("whapi", "voice"))
    forwarded = media_message("whapi", "voice", provider_message_id="forwarded-1", message_id="m-forwarded-1")
    second = await run(handler, forwarded)
    assert isinstance(first, media.MediaStored) and not first.reused
    assert isinstance(second, media.MediaStored) and second.reused and second.path == first.path
    assert len(fake.calls("/media/")) == 2  # a message's claimed sha256 never links it to a stored object
    assert len([p for p in handler.store.root.rglob("*") if p.is_file()]) == 1  # type: ignore[attr-defined]


async def test_wrong_bytes_are_not_stored(provider: tuple[FakeProviderMedia, str], handler: MediaHandler) -> None:
    fake, _url = provider
    fake.corrupt.add("oga-7f3c1a2b9d4e5f60718293a4")
    failed = await run(handler, media_message("whapi", "voice"))
    assert isinstance(failed, media.MediaFailed) and failed.reason == "sha256_mismatch" and failed.final
    assert not any(p.is_file() for p in handler.store.root.rglob("*"))  # type: ignore[attr-defined]


async def test_the_size_cap_holds_while_streaming(provider: tuple[FakeProviderMedia, str], handler: MediaHandler) -> None:
    fake, _url = provider
    fake.add_synthetic("big-1", 3 * 1024 * 1024)
    event = with_media(media_message("whapi", "document_pdf"), provider_media_id="big-1", size_bytes=None, sha256=None)
    failed = await run(handler, event)
    assert isinstance(failed, media.MediaFailed) and failed.reason == "too_large"
    declared = with_media(media_message("whapi", "document_pdf"), size_bytes=2 * 1024 * 1024)
    calls = len(fake.calls())
    assert (await run(handler, declared)).reason == "too_large"  # type: ignore[union-attr]
    assert len(fake.calls()) == calls  # refused on the declared size, before any request


async def test_a_non_allow_listed_url_is_never_requested(handler: MediaHandler) -> None:
    async with serving(FakeProviderMedia().app) as other:
        event = with_media(media_message("whapi", "voice"), provider_media_id=None, url=f"{other.replace('127.0.0.1', 'localhost')}/media/x")
        failed = await run(handler, event)
    assert isinstance(failed, media.MediaFailed) and failed.reason == "host_not_allowed"


async def test_redirects_outside_the_allow_list_are_refused(
    provider: tuple[FakeProviderMedia, str], handler: MediaHandler
) -> None:
    fake, _url = provider
    fake.redirects["oga-7f3c1a2b9d4e5f60718293a4"] = "http://169.254.169.254/latest/meta-data/"
    failed = await run(handler, media_message("whapi", "voice"))
    assert isinstance(failed, media.MediaFailed) and failed.reason == "host_not_allowed"


async def test_wrong_credentials_and_missing_media_are_final(
    provider: tuple[FakeProviderMedia, str], tmp_path: Path
) -> None:
    _fake, url = provider
    settings = settings_for(url, tmp_path, whapi_api_token="wrong")
    store = LocalMediaStore(settings.media_dir, settings.media_bucket)
    async with httpx.AsyncClient(timeout=5) as client:
        h = MediaHandler(settings, store, Fetcher(client, settings.media_max_bytes), MediaMetrics(CollectorRegistry()))
        assert (await run(h, media_message("whapi", "voice"))).reason == "unauthorized"  # type: ignore[union-attr]
        gone = with_media(media_message("meta", "voice"), provider_media_id="999")
        assert (await run(h, gone)).reason == "not_found"  # type: ignore[union-attr]


async def test_server_errors_are_transient_with_retry_after(
    provider: tuple[FakeProviderMedia, str], handler: MediaHandler
) -> None:
    fake, _url = provider
    fake.fail(status=503, times=1, retry_after=2, key="oga-7f3c1a2b9d4e5f60718293a4")
    with pytest.raises(TransientError) as caught:
        await handler(message_record(media_message("whapi", "voice")))
    assert caught.value.retry_after == 2
    assert isinstance(await run(handler, media_message("whapi", "voice")), media.MediaStored)


async def test_give_up_records_a_non_final_failure(handler: MediaHandler) -> None:
    [out] = handler.give_up(message_record(media_message("whapi", "voice")), TransientError("HTTP 500"), 3)
    failed = media.decode_event(out.value)
    assert isinstance(failed, media.MediaFailed) and not failed.final and failed.attempts == 3
    assert failed.reason == "download_failed"


async def test_messages_without_media_produce_nothing(handler: MediaHandler) -> None:
    for event in message_events("meta", "batch") + message_events("whapi", "status_update"):
        if getattr(event, "media", None) is None:
            assert await handler(message_record(event)) == []
