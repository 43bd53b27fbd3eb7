"""With the broker stopped mid-run ingest answers 503 with Retry-After, recovers by itself
when the broker returns, and every delivery that got a 200 is on wa.raw."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from contracts.raw import RawDelivery
from contracts.settings import Settings
from contracts.topics import RAW
from ingest.bootstrap import create_app
from msgmem.localstack.http_server import serving
from runtime.kafka import end_offsets, ensure_topics, read_range
from msgmem.localstack.kafka import LocalKafka, kafka_libs
from msgmem.localstack.processes import file_sink, free_port
from msgmem.send import signed_headers
from tests.integration.test_ingest import CREDS, WEBHOOKS, ingest_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path: Path, settings: Settings) -> Iterator[LocalKafka]:
    """A broker of this test's own, so stopping it leaves the session's broker alone."""
    libs = kafka_libs(settings.cache_dir, settings.local_kafka_version)
    kafka = LocalKafka(libs, tmp_path / "kafka", free_port(), free_port(), sink=file_sink(tmp_path / "kafka.log"))
    kafka.start().wait_ready()
    try:
        yield kafka
    finally:
        kafka.stop()


async def test_broker_outage_gives_503_then_recovers_without_losing_a_200(
    own_broker: LocalKafka, settings: Settings
) -> None:
    cfg = ingest_settings(
        settings, kafka_bootstrap_servers=own_broker.bootstrap_servers,
        ingest_publish_timeout_seconds=1.5, kafka_request_timeout_ms=1500,
    )
    await ensure_topics(cfg)
    template = orjson.loads((WEBHOOKS / "whapi" / "text.json").read_bytes())
    accepted: list[str] = []
    statuses: list[int] = []
    retry_after: set[str] = set()

    async def post(client: httpx.AsyncClient, i: int) -> None:
        body = orjson.dumps(dict(template, seq=i))
        r = await client.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, CREDS))
        statuses.append(r.status_code)
        if r.status_code == 200:
            accepted.append(r.json()["delivery_id"])
        elif r.status_code == 503:
            retry_after.add(r.headers.get("retry-after", ""))

    async def until(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        i = len(statuses)
        while not predicate():
            assert time.monotonic() < deadline, f"timed out; last statuses {statuses[-10:]}"
            await asyncio.gather(*(post(client, i + k) for k in range(5)))
            i += 5

    async with serving(create_app(cfg)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        await until(lambda: statuses.count(200) >= 20, 30)

        await asyncio.to_thread(own_broker.stop)
        before_outage = len(statuses)
        await until(lambda: 503 in statuses[before_outage:], 30)
        assert (await client.get("/readyz")).status_code == 503
        assert retry_after == {str(cfg.ingest_retry_after_seconds)}

        await asyncio.to_thread(lambda: own_broker.start().wait_ready())
        after_restart = len(statuses)
        await until(lambda: statuses[after_restart:].count(200) >= 20, 90)
        assert (await client.get("/readyz")).status_code == 200

    records = await read_range(cfg, RAW.name, {}, await end_offsets(cfg, RAW.name))
    on_topic = {RawDelivery.from_kafka(r.value, list(r.headers)).delivery_id for r in records}
    assert set(accepted) <= on_topic, f"{len(set(accepted) - on_topic)} acknowledged deliveries are missing"
    assert set(statuses) <= {200, 503}
