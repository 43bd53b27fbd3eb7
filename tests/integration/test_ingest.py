"""Ingest against the real broker over real HTTP: verified deliveries land on wa.raw byte
for byte; everything else is refused with the right status and writes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from pydantic import SecretStr

from contracts.raw import RawDelivery
from contracts.settings import Settings
from contracts.topics import RAW
from ingest.bootstrap import create_app
from msgmem.localstack.http_server import serving
from runtime.kafka import end_offsets as topic_end_offsets, read_range
from msgmem.send import Credentials, signed_headers
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration

WEBHOOKS = FIXTURES / "webhooks"
FIXTURE_PROVIDERS = {"whapi": "whapi", "meta_cloud": "meta", "evolution": "evolution"}
SECRETS = {
    "whapi_token": "test-whapi-token",
    "meta_app_secret": "test-app-secret",
    "meta_verify_token": "test-verify-token",
    "evolution_api_key": "test-evolution-apikey",
    "ingest_api_key": "test-ingest-api-key",
}
CREDS = Credentials(
    SECRETS["whapi_token"], SECRETS["meta_app_secret"], SECRETS["evolution_api_key"], SECRETS["ingest_api_key"]
)


def ingest_settings(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={k: SecretStr(v) for k, v in SECRETS.items()} | overrides)


@pytest.fixture
async def ingest(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(ingest_settings(settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client


async def end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    return await topic_end_offsets(settings, RAW.name)


async def records_since(settings: Settings, start: dict[TopicPartition, int]) -> list[RawDelivery]:
    """Every wa.raw record written after ``start`` (offsets from ``end_offsets``)."""
    records = await read_range(settings, RAW.name, start, await end_offsets(settings))
    return [RawDelivery.from_kafka(r.value, list(r.headers)) for r in records]


def fixture_files() -> list[tuple[str, Path]]:
    return [(FIXTURE_PROVIDERS[d.name], f) for d in sorted(WEBHOOKS.iterdir()) if d.is_dir() for f in sorted(d.glob("*.json"))]


async def test_every_provider_fixture_is_accepted_and_stored_byte_identical(
    ingest: httpx.AsyncClient, settings: Settings
) -> None:
    start = await end_offsets(settings)
    sent: dict[str, tuple[str, bytes]] = {}
    for provider, path in fixture_files():
        body = path.read_bytes()
        response = await ingest.post(f"/webhooks/{provider}", content=body, headers=signed_headers(provider, body, CREDS))
        assert response.status_code == 200, (path, response.text)
        sent[response.json()["delivery_id"]] = (provider, body)
    assert len(sent) == len(fixture_files()) > 30

    stored = {d.delivery_id: d for d in await records_since(settings, start)}
    assert set(stored) == set(sent)
    for delivery_id, (provider, body) in sent.items():
        delivery = stored[delivery_id]
        if provider == "evolution":  # byte for byte but for the apikey's value, redacted
            key = f'"{SECRETS["evolution_api_key"]}"'.encode()
            assert key in body and delivery.redacted == ("apikey",)
            body = body.replace(key, b'"[redacted]"')
        assert delivery.provider == provider and delivery.body == body
    whapi_text = next(d for d in stored.values() if d.body == (WEBHOOKS / "whapi" / "text.json").read_bytes())
    assert whapi_text.channel == "TESTCH-A1B2C" and whapi_text.headers["content-type"] == "application/json"
    assert "authorization" not in whapi_text.headers
    meta_text = next(d for d in stored.values() if d.body == (WEBHOOKS / "meta_cloud" / "text.json").read_bytes())
    assert meta_text.channel == "100000000000001" and meta_text.headers["x-hub-signature-256"].startswith("sha256=")
    evo = next(d for d in stored.values() if d.provider == "evolution" and b"acme-main" in d.body)
    assert evo.channel == "acme-main"


@pytest.mark.parametrize(
    ("provider", "headers", "reason"),
    [
        ("whapi", {}, "missing Bearer token"),
        ("whapi", {"authorization": "Bearer wrong"}, "wrong Bearer token"),
        ("whapi", {"authorization": "Basic dGVzdA=="}, "missing Bearer token"),
        ("meta", {}, "missing X-Hub-Signature-256"),
        ("meta", {"x-hub-signature-256": "sha256=" + "0" * 64}, "signature does not match"),
        ("meta", {"x-hub-signature-256": "md5=abc"}, "not of the form"),
        ("evolution", {"apikey": "wrong"}, "wrong apikey"),
        ("outbound", {"authorization": "Bearer wrong"}, "wrong API key"),
    ],
)
async def test_unauthenticated_deliveries_are_401_and_write_nothing(
    ingest: httpx.AsyncClient, settings: Settings, provider: str, headers: dict[str, str], reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    start = await end_offsets(settings)
    body = (WEBHOOKS / "whapi" / "text.json").read_bytes()
    path = "/events/outbound" if provider == "outbound" else f"/webhooks/{provider}"
    response = await ingest.post(path, content=body, headers={"content-type": "application/json"} | headers)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "reason": "unauthorized"}  # the why is only logged
    assert any(reason in r.getMessage() for r in caplog.records if r.name == "ingest.service")
    assert await records_since(settings, start) == []


async def test_evolution_apikey_in_the_body_must_match(ingest: httpx.AsyncClient) -> None:
    payload = orjson.loads((WEBHOOKS / "evolution" / "text.json").read_bytes())
    good = await ingest.post("/webhooks/evolution", content=orjson.dumps(payload))
    assert good.status_code == 200
    payload["apikey"] = "forged"
    bad = await ingest.post("/webhooks/evolution", content=orjson.dumps(payload))
    assert bad.status_code == 401 and bad.json()["reason"] == "unauthorized"


async def test_signature_covers_the_exact_bytes(ingest: httpx.AsyncClient) -> None:
    body = (WEBHOOKS / "meta_cloud" / "text.json").read_bytes()
    headers = signed_headers("meta", body, CREDS)
    reserialised = orjson.dumps(orjson.loads(body))
    response = await ingest.post("/webhooks/meta", content=reserialised, headers=headers)
    assert response.status_code == 401


async def test_malformed_oversized_and_unknown(settings: Settings) -> None:
    small = ingest_settings(settings, ingest_max_body_bytes=4096)
    async with serving(create_app(small)) as url, httpx.AsyncClient(base_url=url) as client:
        start = await end_offsets(settings)
        not_json = b"<xml>nope</xml>"
        r = await client.post("/webhooks/whapi", content=not_json, headers=signed_headers("whapi", not_json, CREDS))
        assert r.status_code == 400 and "not JSON" in r.json()["reason"]

        big = b'{"messages": [], "pad": "' + b"x" * 5000 + b'"}'
        r = await client.post("/webhooks/meta", content=big, headers=signed_headers("meta", big, CREDS))
        assert r.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the cap applies while reading
            for _ in range(10):
                yield b"x" * 1000

        r = await client.post("/webhooks/whapi", content=chunks(), headers=signed_headers("whapi", b"", CREDS))
        assert r.status_code == 413

        r = await client.post("/webhooks/waha", content=b"{}")
        assert r.status_code == 404
        assert await records_since(settings, start) == []

        metrics = (await client.get("/metrics")).text
        assert 'msgmem_ingest_deliveries_total{outcome="malformed",provider="whapi"} 1.0' in metrics
        assert 'outcome="too_large"' in metrics


async def test_meta_subscription_handshake(ingest: httpx.AsyncClient) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1158201444"}
    ok = await ingest.get("/webhooks/meta", params=query)
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = await ingest.get("/webhooks/meta", params=query | {"hub.verify_token": "nope"})
    assert bad.status_code == 403
    assert (await ingest.get("/webhooks/whapi", params=query)).status_code == 405


@pytest.mark.parametrize("body", [b"[]", b'[{"messages": []}]', b"42", b"-1.5", b'"hello"', b"true", b"null"])
@pytest.mark.parametrize("provider", ["whapi", "meta", "evolution"])
async def test_json_that_is_not_an_object_is_400_and_writes_nothing(
    ingest: httpx.AsyncClient, settings: Settings, provider: str, body: bytes
) -> None:
    start = await end_offsets(settings)
    r = await ingest.post(f"/webhooks/{provider}", content=body, headers=signed_headers(provider, body, CREDS))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "malformed"
    reason = r.json()["reason"]
    assert reason.startswith("body is a JSON ") and f"{provider} takes a JSON object" in reason
    assert "hello" not in reason and "42" not in reason  # the type, never the value
    assert await records_since(settings, start) == []


async def test_get_on_a_post_only_route_is_405(ingest: httpx.AsyncClient) -> None:
    for path in ("/webhooks/whapi", "/webhooks/evolution", "/events/outbound"):
        r = await ingest.get(path)
        assert r.status_code == 405, (path, r.text)
        assert r.headers["allow"] == "POST" and r.json()["error"] == "method_not_allowed"
    assert (await ingest.get("/webhooks/waha")).status_code == 404  # unknown stays unknown
    query = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "77"}
    assert (await ingest.get("/webhooks/meta", params=query)).text == "77"  # Meta's check stays


async def test_outbound_takes_one_send_or_a_list_of_sends(ingest: httpx.AsyncClient, settings: Settings) -> None:
    send = {
        "provider": "whapi", "channel_id": "TESTCH-A1B2C", "chat_id": "15550001234", "type": "text",
        "text": "two at once", "sent_at": "2026-11-20T09:20:00Z",
    }
    start = await end_offsets(settings)
    sends = orjson.dumps([dict(send, provider_message_id="list-1"), dict(send, provider_message_id="list-2")])
    ok = await ingest.post("/events/outbound", content=sends, headers=signed_headers("outbound", sends, CREDS))
    assert ok.status_code == 200, ok.text
    [stored] = await records_since(settings, start)
    assert stored.provider == "outbound" and stored.body == sends

    start = await end_offsets(settings)
    for body, status, reason in [
        (b"[]", 422, "an empty list of sends"),
        (orjson.dumps([dict(send, provider_message_id="x"), {"text": "no ids"}]), 422, "[1].provider_message_id"),
        (b"7", 400, "body is a JSON number"),
    ]:
        r = await ingest.post("/events/outbound", content=body, headers=signed_headers("outbound", body, CREDS))
        assert r.status_code == status and reason in r.json()["reason"], (body, r.text)
    assert await records_since(settings, start) == []


async def test_outbound_events_are_validated_and_appended(ingest: httpx.AsyncClient, settings: Settings) -> None:
    start = await end_offsets(settings)
    event = {
        "provider": "meta_cloud", "channel_id": "100000000000001", "chat_id": "15550001234",
        "provider_message_id": "wamid.outbound-1", "type": "text", "text": "Your order ships today",
        "sent_at": "2026-11-20T09:20:00Z", "sender_name": "support-bot",
    }
    body = orjson.dumps(event)
    ok = await ingest.post("/events/outbound", content=body, headers=signed_headers("outbound", body, CREDS))
    assert ok.status_code == 200, ok.text
    bad_body = orjson.dumps({"text": "no ids"})
    bad = await ingest.post("/events/outbound", content=bad_body, headers=signed_headers("outbound", bad_body, CREDS))
    assert bad.status_code == 422 and "provider_message_id" in bad.json()["reason"]
    [stored] = await records_since(settings, start)
    assert stored.provider == "outbound" and stored.channel == "100000000000001" and stored.body == body


async def test_health_readiness_and_metrics(ingest: httpx.AsyncClient) -> None:
    assert (await ingest.get("/healthz")).json() == {"status": "alive"}
    assert (await ingest.get("/readyz")).status_code == 200
    body = (WEBHOOKS / "whapi" / "text.json").read_bytes()
    await ingest.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, CREDS))
    metrics = (await ingest.get("/metrics")).text
    assert 'msgmem_ingest_deliveries_total{outcome="accepted",provider="whapi"}' in metrics
    assert "msgmem_ingest_append_seconds_bucket" in metrics
    assert "msgmem_ingest_requests_in_flight" in metrics


async def test_5000_concurrent_deliveries_give_exactly_5000_records(
    ingest: httpx.AsyncClient, settings: Settings
) -> None:
    start = await end_offsets(settings)
    marker = uuid.uuid4().hex
    template = orjson.loads((WEBHOOKS / "whapi" / "text.json").read_bytes())
    limit = asyncio.Semaphore(200)

    async def post(i: int) -> int:
        template_i = dict(template, channel_id=f"load-{marker}", seq=i)
        body = orjson.dumps(template_i)
        async with limit:
            r = await ingest.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, CREDS))
        return r.status_code

    statuses = await asyncio.gather(*(post(i) for i in range(5000)))
    assert statuses.count(200) == 5000
    stored = [d for d in await records_since(settings, start) if d.channel == f"load-{marker}"]
    assert len(stored) == 5000
    assert sorted(orjson.loads(d.body)["seq"] for d in stored) == list(range(5000))
