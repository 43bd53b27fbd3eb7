"""Declarative providers through real ingest and the real broker: served at
/webhooks/{name} with the built-in guarantees, and Whapi re-expressed as a mapping file
(examples/providers/whapi.yaml) gives, through ingest, wa.raw and the normalize stage's
handler, the events of the built-in whapi normaliser on every Whapi fixture."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import TopicPartition

from contracts import messages
from contracts.raw import RawDelivery
from contracts.settings import Settings
from contracts.topics import RAW
from ingest.bootstrap import create_app
from msgmem.localstack.http_server import serving
from runtime.kafka import end_offsets as topic_end_offsets, read_range
from streams.common.records import InputRecord
from streams.normalize.agent import config_from, outputs_for
from streams.normalize.logic import NormaliseConfig, normalise_parts
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "providers"
WHAPI = FIXTURES / "webhooks" / "whapi"
WHAPI_FILES = sorted(WHAPI.glob("*.json")) + sorted((WHAPI / "kinds").glob("*.json"))
TOKEN, LUMINOUS_SECRET, KEY = "whapi-declarative-token", "luminous-webhook-secret", "acme-gateway-key"
DERIVED = {"provider", "chat_key", "event_id", "message_id", "target_message_id", "delivery_id", "received_at"}
CAP = 2048


@pytest.fixture
async def ingest(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    small = {
        "name": "acme-gw", "auth": {"type": "api_key", "header": "X-Gateway-Key", "secret_env": "ACME_GW_KEY"},
        "channel": "account", "envelope": ["account"], "max_body_bytes": CAP,
    }  # fmt: skip
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump(small))
    for variable, value in (("WHAPI_DECLARATIVE_TOKEN", TOKEN), ("LUMINOUS_WEBHOOK_SECRET", LUMINOUS_SECRET),
                            ("ACME_GW_KEY", KEY)):  # fmt: skip
        monkeypatch.setenv(variable, value)
    files = [EXAMPLES / "whapi.yaml", EXAMPLES / "luminous.yaml", tmp_path / "acme.yaml"]
    configured = settings.model_copy(update={"declarative_providers": files})
    async with serving(create_app(configured)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client, configured


async def end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    return await topic_end_offsets(settings, RAW.name)


async def raw_records(settings: Settings, start: dict[TopicPartition, int]) -> list[InputRecord]:
    found = await read_range(settings, RAW.name, start, await end_offsets(settings))
    return [InputRecord(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers)) for r in found]


def dumped(event: messages.MessageEvent) -> dict:
    return {k: v for k, v in event.model_dump(mode="json").items() if k not in DERIVED}


async def test_every_whapi_fixture_through_the_mapping_gives_the_built_in_events(
    ingest: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, settings = ingest
    start = await end_offsets(settings)
    sent = {}
    for path in WHAPI_FILES:
        body = path.read_bytes()
        response = await client.post("/webhooks/whapi-declarative", content=body,
                                     headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"})  # fmt: skip
        assert response.status_code == 200, (path.name, response.text)
        sent[response.json()["delivery_id"]] = path
    records = await raw_records(settings, start)
    assert len(records) == len(sent) == len(WHAPI_FILES) >= 29

    config = config_from(settings)  # the normalize stage's own loading of DECLARATIVE_PROVIDERS
    for record in records:
        delivery = RawDelivery.from_kafka(record.value, list(record.headers))
        path = sent[delivery.delivery_id]
        assert (delivery.provider, delivery.channel, delivery.body) == ("whapi-declarative", "TESTCH-A1B2C", path.read_bytes())
        assert "authorization" not in delivery.headers
        outputs = outputs_for(record, config)
        assert {o.topic for o in outputs} == {messages.TOPIC}, path.name  # no dead letter
        ours = [messages.decode_event(o.value) for o in outputs]
        builtin = normalise_parts(delivery.model_copy(update={"provider": "whapi"}), NormaliseConfig())
        assert builtin.failures == []
        assert [dumped(e) for e in ours] == [dumped(e) for e in builtin.events], path.name
        assert all(e.provider == "whapi-declarative" and e.delivery_id == delivery.delivery_id for e in ours)


async def test_hmac_signed_deliveries_are_verified_on_the_raw_bytes(ingest: tuple[httpx.AsyncClient, Settings]) -> None:
    client, settings = ingest
    start = await end_offsets(settings)
    body = (EXAMPLES / "luminous-message.json").read_bytes()
    signature = "sha256=" + hmac.new(LUMINOUS_SECRET.encode(), body, hashlib.sha256).hexdigest()
    good = await client.post("/webhooks/luminous", content=body, headers={"x-luminous-signature": signature})
    assert good.status_code == 200
    for headers, content in (
        ({"x-luminous-signature": signature}, body.replace(b"Dana", b"Dina")),  # a changed body
        ({"x-luminous-signature": "sha256=" + "0" * 64}, body),
        ({"x-luminous-signature": "sha1=abc"}, body),
        ({}, body),
    ):
        refused = await client.post("/webhooks/luminous", content=content, headers=headers)
        assert refused.status_code == 401 and refused.json() == {"error": "unauthorized", "reason": "unauthorized"}
    [record] = await raw_records(settings, start)
    delivery = RawDelivery.from_kafka(record.value, list(record.headers))
    assert (delivery.provider, delivery.channel, delivery.body) == ("luminous", "lum-acme-01", body)
    assert delivery.headers["x-luminous-signature"] == signature  # kept, to verify again
    [event] = [messages.decode_event(o.value) for o in outputs_for(record, config_from(settings))]
    assert (event.type, event.provider, event.chat_id, event.message_type) == ("message_received", "luminous", "15550001234", "image")


async def test_the_built_in_guarantees_hold(
    ingest: tuple[httpx.AsyncClient, Settings], caplog: pytest.LogCaptureFixture
) -> None:
    client, settings = ingest
    start = await end_offsets(settings)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    text = (WHAPI / "text.json").read_bytes()

    for headers, reason in (({}, "missing Bearer token"), ({"authorization": "Bearer nope"}, "wrong Bearer token")):
        response = await client.post("/webhooks/whapi-declarative", content=text, headers=headers)
        assert response.status_code == 401 and response.json()["reason"] == "unauthorized"
        assert any(reason in r.getMessage() for r in caplog.records if r.name == "ingest.service")
    assert TOKEN not in caplog.text

    not_an_object = await client.post("/webhooks/whapi-declarative", content=b"[1, 2]", headers=bearer)
    assert not_an_object.status_code == 400
    assert not_an_object.json()["reason"] == "body is a JSON array; whapi-declarative takes a JSON object"
    assert (await client.post("/webhooks/whapi-declarative", content=b"{no", headers=bearer)).status_code == 400

    key = {"x-gateway-key": KEY}
    over = b'{"account": "a", "pad": "' + b"x" * CAP + b'"}'
    assert (await client.post("/webhooks/acme-gw", content=over, headers=key)).status_code == 413
    # the header credential is checked before the body is read: a stranger gets 401, not 413
    stranger = await client.post("/webhooks/acme-gw", content=over, headers={"x-gateway-key": "nope"})
    assert stranger.status_code == 401
    assert (await client.post("/webhooks/acme-gw", content=b"{}", headers={})).status_code == 401

    assert (await client.get("/webhooks/whapi-declarative")).status_code == 405
    assert (await client.post("/webhooks/not-configured", content=text, headers=bearer)).status_code == 404
    assert await raw_records(settings, start) == []  # nothing refused was appended

    accepted = await client.post("/webhooks/acme-gw", content=b'{"account": "acme-1", "hello": [1]}', headers=key)
    assert accepted.status_code == 200
    [record] = await raw_records(settings, start)
    [event] = [messages.decode_event(o.value) for o in outputs_for(record, config_from(settings))]
    # a gateway mapped only for its credentials: everything it sends is kept, never dropped
    assert (event.type, event.provider, event.channel_id, event.provider_type) == (
        "provider_event_unsupported", "acme-gw", "acme-1", "hello",
    )
