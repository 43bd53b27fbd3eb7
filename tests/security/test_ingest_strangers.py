"""Ingest under attack, over real HTTP against the real broker: a stranger costs no memory
and writes nothing; the one secret a provider puts in its bodies never reaches wa.raw.

Each test is the attacker's request and what must not happen."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from contracts.raw import H_REDACTED
from contracts.settings import Settings
from contracts.topics import RAW
from ingest.bootstrap import create_app
from msgmem.dlq import load
from msgmem.localstack.http_server import serving
from msgmem.localstack.processes import env_with
from msgmem.send import signed_headers
from msgmem.services import by_name
from tests.integration.test_ingest import CREDS, SECRETS, WEBHOOKS, end_offsets, ingest_settings, records_since
from tests.security.http import partial_post, read_answer
from tests.services import running
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
HUGE = 512 * MIB  # declared, never sent
EVOLUTION_KEY = SECRETS["evolution_api_key"]


def meta_signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRETS["meta_app_secret"].encode(), body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "x-hub-signature-256": f"sha256={digest}"}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/webhooks/whapi", {}),
        ("/webhooks/whapi", {"authorization": "Bearer forged"}),
        ("/events/outbound", {"x-api-key": "forged"}),
        ("/webhooks/evolution", {"apikey": "forged"}),
        ("/webhooks/meta", {}),  # no signature: nothing to verify the body against
        ("/webhooks/meta", {"x-hub-signature-256": "sha256=not-hex"}),
    ],
)
async def test_a_stranger_is_refused_before_the_body_is_read(
    settings: Settings, path: str, headers: dict[str, str]
) -> None:
    """A forged or missing header credential and a 512 MiB body that never comes: the 401
    arrives while the body is still unsent, and nothing is appended."""
    start = await end_offsets(settings)
    async with serving(create_app(ingest_settings(settings))) as url:
        async with partial_post(url, path, headers, declared=HUGE, sent=b'{"pad": "') as (reader, _):
            answer = await read_answer(reader)
    assert answer.status == 401
    assert await records_since(settings, start) == []


async def test_meta_bodies_stop_at_metas_documented_maximum(settings: Settings) -> None:
    """Meta's signature needs the body, so a stranger with a well-formed signature header
    gets to send one: never more than the 3 MB Meta documents, whatever INGEST_MAX_BODY_BYTES."""
    configured = ingest_settings(settings)
    assert configured.ingest_max_body_bytes == 16 * MIB and configured.ingest_body_limit_of("meta") == 3 * MIB
    start = await end_offsets(settings)
    forged = {"content-type": "application/json", "x-hub-signature-256": "sha256=" + "0" * 64}
    async with serving(create_app(configured)) as url:
        async with partial_post(url, "/webhooks/meta", forged, declared=3 * MIB + 1, sent=b"") as (reader, _):
            assert (await read_answer(reader)).status == 413  # declared: refused before a byte is read

        async def endless() -> AsyncIterator[bytes]:  # chunked, no length declared
            for _ in range(64):
                yield b"x" * (256 * 1024)

        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            response = await client.post("/webhooks/meta", content=endless(), headers=forged)
            assert response.status_code == 413

            # A real Meta delivery near the documented maximum still goes through.
            body = orjson.dumps({"object": "whatsapp_business_account", "entry": [], "pad": "x" * (3 * MIB - 200)})
            accepted = await client.post("/webhooks/meta", content=body, headers=meta_signed(body))
            assert accepted.status_code == 200
    [stored] = await records_since(settings, start)
    assert stored.body == body


async def test_holding_connections_open_cannot_exhaust_ingest(settings: Settings) -> None:
    """Deliveries whose bodies trickle in fill INGEST_MAX_IN_FLIGHT; one more is 503 with
    Retry-After (not queued in memory), a trickle is cut at the body timeout with 408, and
    the slots come back."""
    limited = ingest_settings(settings, ingest_max_in_flight=2, ingest_body_timeout_seconds=1.5)
    auth = signed_headers("whapi", b"", CREDS)
    async with serving(create_app(limited)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with (
            partial_post(url, "/webhooks/whapi", auth, declared=4096, sent=b'{"messages": [') as (first, _),
            partial_post(url, "/webhooks/whapi", auth, declared=4096, sent=b'{"messages": [') as (second, _),
        ):
            await _until_in_flight(client, 2)
            body = (WEBHOOKS / "whapi" / "text.json").read_bytes()
            refused = await client.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, CREDS))
            assert refused.status_code == 503 and refused.json()["error"] == "overloaded"
            assert refused.headers["retry-after"] == str(limited.ingest_retry_after_seconds)
            for held in (first, second):
                assert (await read_answer(held, timeout=5)).status == 408
        accepted = await client.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, CREDS))
        assert accepted.status_code == 200


async def _until_in_flight(client: httpx.AsyncClient, count: int) -> None:
    needle = f"msgmem_ingest_requests_in_flight {float(count)}"
    for _ in range(100):
        if needle in (await client.get("/metrics")).text:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never {count} deliveries in flight")


def _evolution(**changes: object) -> dict[str, object]:
    payload = orjson.loads((WEBHOOKS / "evolution" / "text.json").read_bytes())
    assert payload["apikey"] == EVOLUTION_KEY
    return payload | changes


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("in the body, as Evolution sends it", orjson.dumps(_evolution())),
        ("with spaces and a nested copy",
         orjson.dumps(_evolution(data={"apikey": EVOLUTION_KEY}), option=orjson.OPT_INDENT_2)),
        ("its name written with escapes", orjson.dumps(_evolution()).replace(b'"apikey"', b'"api\\u006bey"')),
    ],
)  # fmt: skip
async def test_the_evolution_apikey_never_reaches_the_topic(settings: Settings, name: str, body: bytes) -> None:
    """Evolution puts its apikey in every body: the stored record holds neither the key nor
    any trace of it but a header saying what was redacted."""
    start = await end_offsets(settings)
    async with serving(create_app(ingest_settings(settings))) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/webhooks/evolution", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, name
    [record] = await read_since(settings, RAW.name, start)
    assert EVOLUTION_KEY.encode() not in record.value
    assert all(EVOLUTION_KEY.encode() not in value for _, value in record.headers)
    assert dict(record.headers)[H_REDACTED] == b"apikey"
    assert orjson.loads(record.value)["apikey"] == "[redacted]"


async def test_dlq_show_of_an_evolution_dead_letter_prints_no_apikey(settings: Settings, tmp_path: Path) -> None:
    """A delivery normalize cannot read becomes a dead letter holding its bytes, which
    `msgmem dlq show` prints: they hold no apikey."""
    payload = _evolution()
    del payload["data"]["key"]  # type: ignore[attr-defined]
    async with serving(create_app(ingest_settings(settings))) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/webhooks/evolution", content=orjson.dumps(payload))
    assert response.status_code == 200
    delivery_id = response.json()["delivery_id"].encode()

    with running("normalize", settings, tmp_path):
        async def letter():  # type: ignore[no-untyped-def]
            return [x for x in (await load(settings)).values()
                    if dict(x.letter.kafka_headers).get("mm-delivery-id") == delivery_id]  # fmt: skip

        [found] = await eventually(letter)
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("msgmem")), "dlq", "show", "--id", found.letter.dead_letter_id],
        env=env_with(by_name("normalize").env(settings)), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert '"apikey":"[redacted]"' in shown.stdout.replace('\\"', '"')  # the letter's bytes are printed
    assert EVOLUTION_KEY not in shown.stdout + shown.stderr
