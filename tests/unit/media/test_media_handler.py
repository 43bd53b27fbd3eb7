"""The media handler against the fake provider media server on a real socket and a local store:
Whapi, Meta (two steps) and Evolution downloads, hash checks, the size cap, the allow-list
(redirects included), reuse of stored objects, and transient versus final failures; media
inline in Evolution deliveries, read from a fake wa.raw; providers without credentials."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from contracts import media
from contracts.settings import Settings
from msgmem.localstack.http_server import serving
from runtime.errors import TransientError
from streams.media.agent import MediaHandler, MediaMetrics
from streams.media.main import http_client
from streams.media.providers import Fetcher
from runtime.media_storage import LocalMediaStore
from tests.fakes.events import (
    WEBHOOK_DIRS,
    fixture_path,
    inline_delivery,
    media_message,
    message_events,
    message_record,
    sha256_file,
    with_media,
)
from tests.fakes.provider_media import FIXTURES, FakeProviderMedia
from tests.fakes.raw_records import FakeRawRecords


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
        "media_trusted_origins": [url],  # the fake serves http on 127.0.0.1: trusted explicitly
    }  # fmt: skip
    return Settings(_env_file=None, **(values | extra))  # type: ignore[call-arg]


@pytest.fixture
async def handler(provider: tuple[FakeProviderMedia, str], tmp_path: Path) -> AsyncIterator[MediaHandler]:
    _fake, url = provider
    settings = settings_for(url, tmp_path)
    store = LocalMediaStore(settings.media_dir, settings.media_bucket)
    async with http_client(settings) as client:
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
    async with http_client(settings) as client:
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


# --- inline media (Evolution webhook_base64) --------------------------------------------------------


def inline_handler(tmp_path: Path, client: httpx.AsyncClient, raw: FakeRawRecords, **extra: object) -> MediaHandler:
    """No provider is configured: inline media need none."""
    values: dict[str, object] = {"media_local_dir": tmp_path / "media", "media_max_bytes": 1024 * 1024} | extra
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    store = LocalMediaStore(settings.media_dir, settings.media_bucket)
    return MediaHandler(settings, store, Fetcher(client, settings.media_max_bytes), MediaMetrics(CollectorRegistry()),
                        raw=raw)  # fmt: skip


@pytest.mark.parametrize(("case", "file"), [("voice", "voice_note.ogg"), ("image_with_caption", "receipt_photo.jpg"),
                                            ("document_pdf", "invoice_text.pdf")])  # fmt: skip
async def test_inline_media_are_decoded_from_wa_raw_with_no_request(tmp_path: Path, case: str, file: str) -> None:
    record, event = inline_delivery(case, file)
    raw = FakeRawRecords(record)
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse_requests)) as client:
        stored = await run(inline_handler(tmp_path, client, raw), event)
    assert isinstance(stored, media.MediaStored), stored
    assert stored.sha256 == sha256_file(file) and stored.size_bytes == fixture_path(file).stat().st_size
    assert (tmp_path / "media" / stored.path).read_bytes() == fixture_path(file).read_bytes()
    assert [(r.topic, r.partition, r.offset) for r in raw.reads] == [("wa.raw", 3, 41)]


def refuse_requests(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got one to {request.url.host}")


async def test_inline_media_obey_the_size_cap_and_the_declared_sha256(tmp_path: Path) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse_requests)) as client:
        record, event = inline_delivery("voice", "voice_note.ogg")
        handler = inline_handler(tmp_path, client, FakeRawRecords(record), media_max_bytes=20 * 1024)
        too_large = await run(handler, with_media(event, size_bytes=None))
        assert isinstance(too_large, media.MediaFailed) and too_large.reason == "too_large"
        record, event = inline_delivery("voice", "audio_clip.mp3")  # other bytes than the message declares
        wrong = await run(inline_handler(tmp_path, client, FakeRawRecords(record)), event)
        assert isinstance(wrong, media.MediaFailed) and wrong.reason == "sha256_mismatch"
        assert (wrong.sha256, wrong.size_bytes) == (sha256_file("voice_note.ogg"), 23485)  # as declared
    assert not any(p.is_file() for p in (tmp_path / "media").rglob("*"))


async def test_malformed_inline_base64_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    record, event = inline_delivery("voice", None, base64_text="SECRET%%not base64")
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse_requests)) as client:
        failed = await run(inline_handler(tmp_path, client, FakeRawRecords(record)), event)
    assert isinstance(failed, media.MediaFailed) and failed.reason == "malformed" and failed.final
    assert "SECRET" not in failed.error and failed.error.startswith("inline base64: ")


async def test_inline_media_gone_from_wa_raw_fall_back_to_the_api(provider: tuple[FakeProviderMedia, str],
                                                                  tmp_path: Path) -> None:  # fmt: skip
    _fake, url = provider
    _record, event = inline_delivery("voice", "voice_note.ogg")
    async with http_client(Settings(_env_file=None, media_trusted_origins=url)) as client:  # type: ignore[call-arg]
        skipped = await run(inline_handler(tmp_path, client, FakeRawRecords()), event)
        assert isinstance(skipped, media.MediaSkipped)
        assert skipped.detail == "EVOLUTION_API_URL is not set, and the inline copy was not found in wa.raw"
        api = inline_handler(tmp_path, client, FakeRawRecords(), evolution_api_url=url,
                             evolution_api_key="test-evolution-apikey", media_trusted_origins=url)  # fmt: skip
        assert isinstance(await run(api, event), media.MediaStored)


# --- providers without credentials, and what errors say ----------------------------------------------


@pytest.mark.parametrize("provider_name", ["whapi", "meta", "evolution"])
async def test_every_fixture_of_an_unconfigured_provider_is_skipped_unrequested(
    provider_name: str, tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, media_local_dir=tmp_path / "media")  # type: ignore[call-arg]
    store = LocalMediaStore(settings.media_dir, settings.media_bucket)
    missing = {"whapi": "WHAPI_API_TOKEN (or WHAPI_TOKEN) is not set", "meta": "META_ACCESS_TOKEN is not set",
               "evolution": "EVOLUTION_API_URL is not set"}[provider_name]  # fmt: skip
    seen = 0
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse_requests)) as client:
        handler = MediaHandler(settings, store, Fetcher(client, settings.media_max_bytes), MediaMetrics(CollectorRegistry()))
        for path in sorted((FIXTURES / "webhooks" / WEBHOOK_DIRS[provider_name]).glob("*.json")):
            for event in message_events(provider_name, path.stem):
                outputs = await handler(message_record(event))
                if getattr(event, "media", None) is None:
                    assert outputs == []
                    continue
                [out] = outputs
                skipped = media.decode_event(out.value)
                assert isinstance(skipped, media.MediaSkipped), (path.stem, skipped)
                assert (skipped.reason, skipped.detail) == ("not_configured", missing)
                assert dict(out.headers)["mm-type"] == b"media_skipped"
                assert skipped.size_bytes == event.media.size_bytes and skipped.sha256 == event.media.sha256
                seen += 1
    assert seen >= 6


async def test_download_errors_name_the_host_and_status_never_the_url(
    provider: tuple[FakeProviderMedia, str], handler: MediaHandler
) -> None:
    fake, url = provider
    host = httpx.URL(url).host
    fake.fail(status=403, times=1, key="oga-7f3c1a2b9d4e5f60718293a4")
    failed = await run(handler, media_message("whapi", "voice"))
    assert isinstance(failed, media.MediaFailed) and failed.reason == "unauthorized"
    assert failed.error == f"media download from {host}: HTTP 403"
    fake.fail(status=502, times=1, path="/cdn/")
    with pytest.raises(TransientError) as caught:
        await handler(message_record(media_message("meta", "voice")))
    assert str(caught.value) == f"media download from {host}: HTTP 502"  # not the CDN URL with its signed query
    assert "test-access-token" not in str(caught.value)


async def test_network_errors_name_the_host_and_the_error(tmp_path: Path) -> None:
    settings = settings_for("http://127.0.0.1:9", tmp_path, whapi_api_token="SECRET-TOKEN")  # discard: refused
    store = LocalMediaStore(settings.media_dir, settings.media_bucket)
    async with http_client(settings) as client:
        h = MediaHandler(settings, store, Fetcher(client, settings.media_max_bytes), MediaMetrics(CollectorRegistry()))
        with pytest.raises(TransientError) as caught:
            await h(message_record(media_message("whapi", "voice")))
    text = str(caught.value)
    assert text.startswith("ConnectError reaching 127.0.0.1") and "/media/" not in text and "SECRET" not in text
