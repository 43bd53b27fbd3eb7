"""The media stage under attack, over real HTTP: a provider (or a message) that tries to send the
worker's credentials elsewhere, to make it fetch internal addresses, to blow up its memory or
disk with a compressed body, to store an executable under an image type, or to walk the API's
paths with a crafted media id.

Each test is the attacker's move and what must not happen. The worker is the real handler with
its real HTTP client (``streams.media.main.http_client``: pinned DNS, public addresses only);
the local fakes are let through by MEDIA_TRUSTED_ORIGINS, exactly and explicitly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from contracts import media
from contracts.settings import Settings
from msgmem.localstack.http_server import serving
from streams.media.agent import MediaHandler, MediaMetrics
from streams.media.ids import media_id_problem
from streams.media.main import http_client
from streams.media.providers import Fetcher
from runtime.media_storage import LocalMediaStore
from tests.fakes.events import fixture_path, media_message, message_record, with_media
from tests.fakes.hostile_media import MIB, HostileOrigin, gzip_of_zeros
from tests.fakes.provider_media import FakeProviderMedia

WHAPI_TOKEN, META_TOKEN, EVOLUTION_KEY = "test-whapi-token", "test-access-token", "test-evolution-apikey"
SECRETS = (WHAPI_TOKEN, META_TOKEN, EVOLUTION_KEY)
VOICE_ID = "oga-7f3c1a2b9d4e5f60718293a4"  # Whapi's voice note in the fixtures
META_VOICE_ID = "1205774054289243"
EVOLUTION_VOICE_KEY = "A1B2C3D4E5F60718293A4B5C6D7E8F90"


@asynccontextmanager
async def worker(tmp_path: Path, **values: object) -> AsyncIterator[MediaHandler]:
    settings = Settings(_env_file=None, media_local_dir=tmp_path / "media", media_max_bytes=MIB, **values)  # type: ignore[arg-type]
    store = LocalMediaStore(settings.media_dir, settings.media_bucket)
    async with http_client(settings) as client:
        yield MediaHandler(settings, store, Fetcher(client, settings.media_max_bytes), MediaMetrics(CollectorRegistry()))


async def outcome(handler: MediaHandler, event) -> media.MediaEvent:  # type: ignore[no-untyped-def]
    """The one wa.media event: a refusal is an event, never an exception (so never retried)."""
    [out] = await handler(message_record(event))
    return media.decode_event(out.value)


def whapi(api: str, *trusted: str, **extra: object) -> dict[str, object]:
    return {"whapi_api_url": api, "whapi_api_token": WHAPI_TOKEN, "media_trusted_origins": [api, *trusted]} | extra


def assert_refused(event: media.MediaEvent, reason: str, *, says: str, never: tuple[str, ...] = ()) -> None:
    assert isinstance(event, media.MediaFailed) and event.final, event
    assert event.reason == reason and says in event.error, event.error
    for text in (*SECRETS, *never):
        assert text not in event.error


# --- credentials stay on their origin --------------------------------------------------------------


async def test_the_whapi_token_does_not_follow_a_redirect_to_another_origin(tmp_path: Path) -> None:
    fake, cdn = FakeProviderMedia(), HostileOrigin()
    cdn.serve("/files/voice.ogg", fixture_path("voice_note.ogg").read_bytes(), "audio/ogg")
    async with serving(fake.app) as api, serving(cdn.app) as elsewhere:
        fake.redirects[VOICE_ID] = f"{elsewhere}/files/voice.ogg"
        async with worker(tmp_path, **whapi(api, elsewhere, whapi_media_hosts="127.0.0.1")) as handler:
            stored = await outcome(handler, media_message("whapi", "voice"))
    assert isinstance(stored, media.MediaStored), stored  # the redirect is followed...
    assert [s.path for s in cdn.seen] == ["/files/voice.ogg"]
    assert cdn.leaked(*SECRETS) == [] and "authorization" not in cdn.seen[0].headers  # ...without the token


async def test_the_token_stays_dropped_when_a_redirect_chain_comes_back_to_the_api(tmp_path: Path) -> None:
    fake, cdn = FakeProviderMedia(), HostileOrigin()
    async with serving(fake.app) as api, serving(cdn.app) as elsewhere:
        fake.redirects[VOICE_ID] = f"{elsewhere}/bounce"
        cdn.redirect("/bounce", f"{api}/media/jpeg-1b2c3d4e5f60718293a4b5c6")
        async with worker(tmp_path, **whapi(api, elsewhere, whapi_media_hosts="127.0.0.1")) as handler:
            failed = await outcome(handler, media_message("whapi", "voice"))
    assert_refused(failed, "unauthorized", says="HTTP 401")
    assert [c.status for c in fake.calls("/media/jpeg-")] == [401]  # came back without the token
    assert cdn.leaked(*SECRETS) == []


async def test_the_meta_token_goes_to_graph_not_to_the_url_graph_answers(tmp_path: Path) -> None:
    graph, cdn = HostileOrigin(), HostileOrigin()
    cdn.serve("/blob", fixture_path("voice_note.ogg").read_bytes(), "audio/ogg")
    async with serving(graph.app) as graph_url, serving(cdn.app) as elsewhere:
        graph.serve_json(f"/v21.0/{META_VOICE_ID}", {"url": f"{elsewhere}/blob", "id": META_VOICE_ID})
        values = {"meta_graph_url": graph_url, "meta_access_token": META_TOKEN, "meta_media_hosts": "127.0.0.1",
                  "media_trusted_origins": [graph_url, elsewhere]}  # fmt: skip
        async with worker(tmp_path, **values) as handler:
            stored = await outcome(handler, media_message("meta", "voice"))
    assert isinstance(stored, media.MediaStored), stored
    assert graph.seen[0].headers["authorization"] == f"Bearer {META_TOKEN}"  # its own origin
    assert [s.path for s in cdn.seen] == ["/blob"] and cdn.leaked(*SECRETS) == []  # not a CDN's


async def test_evolution_media_never_come_from_the_url_a_sender_put_in_the_message(tmp_path: Path) -> None:
    fake, attacker = FakeProviderMedia(), HostileOrigin()
    async with serving(fake.app) as api, serving(attacker.app) as elsewhere:
        crafted = with_media(media_message("evolution", "voice"), url=f"{elsewhere}/track.ogg")
        values = {"evolution_api_url": api, "evolution_api_key": EVOLUTION_KEY,
                  "media_trusted_origins": [api, elsewhere]}  # fmt: skip
        async with worker(tmp_path, **values) as handler:
            stored = await outcome(handler, crafted)
            fake.redirects[EVOLUTION_VOICE_KEY] = f"{elsewhere}/steal"  # now the API itself points away
            refused = await outcome(handler, crafted)
    assert isinstance(stored, media.MediaStored), stored  # from getBase64FromMediaMessage
    assert_refused(refused, "host_not_allowed", says="127.0.0.1 is not on the allow-list of media hosts")
    assert attacker.seen == []  # neither the message's URL nor the redirect was ever requested


# --- destinations: allow-listed hosts, https on 443, public addresses ------------------------------

INTERNAL = [
    ("https://127.0.0.1/admin", "127.0.0.1 is a non-public address (loopback)"),
    ("https://10.0.0.5/admin", "10.0.0.5 is a non-public address (private)"),
    ("https://169.254.169.254/latest/meta-data/iam/", "169.254.169.254 is a non-public address (link-local)"),
    ("https://[::ffff:127.0.0.1]/admin", "::ffff:127.0.0.1 is a non-public address (IPv4-mapped loopback)"),
    ("https://[::ffff:a9fe:a9fe]/latest/", "::ffff:a9fe:a9fe is a non-public address (IPv4-mapped link-local)"),
    ("https://[64:ff9b::a00:5]/admin", "64:ff9b::a00:5 is a non-public address (NAT64 private)"),
    ("https://[2002:7f00:1::]/admin", "2002:7f00:1:: is a non-public address (6to4 loopback)"),
    ("https://[::1]/admin", "::1 is a non-public address (loopback)"),
    ("https://0.0.0.0/admin", "0.0.0.0 is a non-public address (unspecified)"),
    ("https://localhost/admin", "localhost resolves to "),  # 127.0.0.1 or ::1, then as above
]
LISTED = ",".join(["127.0.0.1", "10.0.0.5", "169.254.169.254", "::ffff:127.0.0.1", "::ffff:a9fe:a9fe", "64:ff9b::a00:5",
                   "2002:7f00:1::", "::1", "0.0.0.0", "localhost"])  # fmt: skip


@pytest.mark.parametrize(("url", "says"), INTERNAL)
async def test_a_media_url_on_an_internal_address_is_never_connected_to(tmp_path: Path, url: str, says: str) -> None:
    """Even when the operator listed the host (or an allowed name's DNS is the attacker's)."""
    crafted = with_media(media_message("whapi", "voice"), provider_media_id=None, url=url)
    async with worker(tmp_path, whapi_api_token=WHAPI_TOKEN, whapi_media_hosts=LISTED) as handler:
        failed = await outcome(handler, crafted)
    assert_refused(failed, "address_not_public", says=says, never=("/admin", "/latest"))
    assert failed.error.endswith("(loopback); rule: public addresses only") or "localhost" not in url  # type: ignore[union-attr]


@pytest.mark.parametrize(("url", "says"), INTERNAL)
async def test_a_provider_cannot_redirect_the_worker_to_an_internal_address(tmp_path: Path, url: str, says: str) -> None:
    fake = FakeProviderMedia()
    async with serving(fake.app) as api:
        fake.redirects[VOICE_ID] = url
        async with worker(tmp_path, **whapi(api, whapi_media_hosts=LISTED)) as handler:
            failed = await outcome(handler, media_message("whapi", "voice"))
    assert_refused(failed, "address_not_public", says=says, never=("/admin", "/latest"))


async def test_plain_http_or_another_port_is_refused_before_any_request(tmp_path: Path) -> None:
    fake, other = FakeProviderMedia(), HostileOrigin()
    async with serving(fake.app) as api, serving(other.app) as elsewhere:
        port = elsewhere.rsplit(":", 1)[1]
        async with worker(tmp_path, **whapi(api, whapi_media_hosts="127.0.0.1,media.example")) as handler:
            fake.redirects[VOICE_ID] = f"{elsewhere}/files/x"  # same host as the trusted API, another port
            plain = await outcome(handler, media_message("whapi", "voice"))
            fake.redirects[VOICE_ID] = "https://media.example:8443/files/x"
            port_8443 = await outcome(handler, media_message("whapi", "voice"))
            fake.redirects[VOICE_ID] = "https://media.example.evil.test/files/x"
            unlisted = await outcome(handler, media_message("whapi", "voice"))
    assert_refused(plain, "host_not_allowed", says=f"127.0.0.1:{port} over http breaks the https-on-port-443 rule")
    assert_refused(port_8443, "host_not_allowed", says="media.example:8443 over https breaks the https-on-port-443 rule")
    assert_refused(unlisted, "host_not_allowed", says="media.example.evil.test is not on the allow-list")
    assert other.seen == []


async def test_an_api_url_on_plain_http_is_not_used_without_being_trusted(tmp_path: Path) -> None:
    fake = FakeProviderMedia()
    async with serving(fake.app) as api:
        async with worker(tmp_path, whapi_api_url=api, whapi_api_token=WHAPI_TOKEN) as handler:
            skipped = await outcome(handler, media_message("whapi", "voice"))
    assert isinstance(skipped, media.MediaSkipped), skipped
    assert skipped.detail.startswith("WHAPI_API_URL is not usable: 127.0.0.1:") and "https-on-port-443" in skipped.detail
    assert fake.calls() == []  # the token never went over http


# --- bodies: no transparent decompression ----------------------------------------------------------

BOMB = 256 * MIB  # inflated size; sent as a few hundred KiB


@pytest.mark.parametrize("provider", ["whapi", "meta", "evolution"])
async def test_a_gzip_bomb_is_refused_unread(tmp_path: Path, provider: str) -> None:
    hostile = HostileOrigin()
    async with serving(hostile.app) as api:
        trusted = {"media_trusted_origins": [api]}
        if provider == "whapi":
            hostile.gzip_bomb(f"/media/{VOICE_ID}", gzip_of_zeros(BOMB), "audio/ogg")
            values = whapi(api)
        elif provider == "meta":
            hostile.gzip_bomb(f"/v21.0/{META_VOICE_ID}", gzip_of_zeros(BOMB, b'{"url": "x"', b"}", b" "), "application/json")
            values = {"meta_graph_url": api, "meta_access_token": META_TOKEN} | trusted
        else:
            body = gzip_of_zeros(BOMB, b'{"base64": "', b'"}', b"A")
            hostile.gzip_bomb("/chat/getBase64FromMediaMessage/acme-main", body, "application/json")
            values = {"evolution_api_url": api, "evolution_api_key": EVOLUTION_KEY} | trusted
        async with worker(tmp_path, **values) as handler:
            failed = await outcome(handler, media_message(provider, "voice"))
            staged = list(handler.store.staging_dir.iterdir()) if handler.store.staging_dir.exists() else []
    assert_refused(failed, "rejected", says="from 127.0.0.1: Content-Encoding gzip (only identity is read)")
    assert [s.headers.get("accept-encoding") for s in hostile.seen] == ["identity"]  # it asked for none
    assert staged == [] and not any(p.is_file() for p in (tmp_path / "media").rglob("*"))


# --- types: what the bytes are, not what they are called ---------------------------------------------

PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00" + b"\x00" * 200


@pytest.mark.parametrize(
    ("body", "stored_as"),
    [(PE, "application/octet-stream"),  # an .exe labelled image/jpeg
     (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "text/plain"),  # never image/svg+xml
     (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"),  # what the bytes are, when that is allowed
     (fixture_path("receipt_photo.jpg").read_bytes(), "image/jpeg")],
)  # fmt: skip
async def test_a_file_is_stored_with_the_type_its_bytes_show(tmp_path: Path, body: bytes, stored_as: str) -> None:
    hostile = HostileOrigin()
    hostile.serve("/media/jpeg-1b2c3d4e5f60718293a4b5c6", body, "image/jpeg")
    event = with_media(media_message("whapi", "image_with_caption"), sha256=None, size_bytes=None)
    assert event.media is not None and event.media.mime_type == "image/jpeg"
    async with serving(hostile.app) as api, worker(tmp_path, **whapi(api)) as handler:
        stored = await outcome(handler, event)
    assert isinstance(stored, media.MediaStored), stored
    assert stored.mime_type == stored_as
    assert stored.path.endswith({"image/png": ".png", "image/jpeg": ".jpg", "text/plain": ".txt"}.get(stored_as, stored.sha256))


# --- ids: one path segment, never a walk through the API --------------------------------------------

CRAFTED_IDS = ["..", ".", "../../v1/messages", "a/../b", "..%2f..%2fsettings", "%2e%2e", "a\\..\\b", "x?limit=1",
               "x#y", "a..b", "-starts-with-a-dash", "x" * 300]  # fmt: skip


@pytest.mark.parametrize("provider", ["whapi", "meta"])
@pytest.mark.parametrize("crafted", CRAFTED_IDS)
async def test_a_crafted_media_id_never_reaches_the_api(tmp_path: Path, provider: str, crafted: str) -> None:
    fake = FakeProviderMedia()
    async with serving(fake.app) as api:
        values = whapi(api) | {"meta_graph_url": api, "meta_access_token": META_TOKEN}
        async with worker(tmp_path, **values) as handler:
            failed = await outcome(handler, with_media(media_message(provider, "voice"), provider_media_id=crafted))
    assert_refused(failed, "malformed", says="provider_media_id does not match the media id pattern")
    assert failed.error == media_id_problem(crafted)  # a fixed text: the crafted value is not in it  # type: ignore[union-attr]
    assert fake.calls() == []


@pytest.mark.parametrize("instance", ["..", ".", "a/../b", "a%2fb", "x?y"])
async def test_a_crafted_evolution_instance_never_reaches_the_api(tmp_path: Path, instance: str) -> None:
    fake = FakeProviderMedia()
    async with serving(fake.app) as api:
        values = {"evolution_api_url": api, "evolution_api_key": EVOLUTION_KEY, "media_trusted_origins": [api]}
        async with worker(tmp_path, **values) as handler:
            failed = await outcome(handler, media_message("evolution", "voice", channel_id=instance))
    assert_refused(failed, "malformed", says="channel_id is not a usable Evolution instance name")
    assert fake.calls() == []
