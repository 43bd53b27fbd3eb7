"""The Kafka publisher against the real broker: batches it builds itself land whole, on the
partition Kafka's default partitioner would pick, and in the order callers were answered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from contracts.raw import RawDelivery
from contracts.settings import Settings
from contracts.topics import RAW
from ingest.publisher import KafkaPublisher
from msgmem.kafka import end_offsets, partitions_of, read_range
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[KafkaPublisher]:
    publisher = KafkaPublisher(settings)
    await publisher.start()
    assert publisher.ready()
    try:
        yield publisher
    finally:
        await publisher.stop()


TEXT = orjson.loads((FIXTURES / "webhooks" / "whapi" / "text.json").read_bytes())


def body(i: int, pad: int = 0) -> bytes:
    """A real Whapi delivery (the live normalize worker of other tests reads these too)."""
    return orjson.dumps(dict(TEXT, seq=i, pad="x" * pad))


def delivery(channel: str, body: bytes) -> RawDelivery:
    return RawDelivery(
        delivery_id=str(uuid.uuid4()), provider="whapi", channel=channel,
        received_at=datetime.now(UTC), headers={"content-type": "application/json"}, body=body,
    )


async def stored(settings: Settings, start: dict, channel: str) -> list[tuple[int, RawDelivery]]:
    records = await read_range(settings, RAW.name, start, await end_offsets(settings, RAW.name))
    found = [(r.partition, RawDelivery.from_kafka(r.value, list(r.headers))) for r in records]
    return [(p, d) for p, d in found if d.channel == channel]


async def test_deliveries_beyond_one_batch_all_land_once_on_the_default_partition(
    publisher: KafkaPublisher, settings: Settings
) -> None:
    start = await end_offsets(settings, RAW.name)
    channel = f"big-{uuid.uuid4().hex}"
    # 12 x 300 KB at once: more than one 1 MiB batch, so one flush sends several.
    sent = [delivery(channel, body(i, pad=300_000)) for i in range(12)]
    await asyncio.gather(*(publisher.publish(d) for d in sent))

    landed = await stored(settings, start, channel)
    assert sorted(d.delivery_id for _, d in landed) == sorted(d.delivery_id for d in sent)
    assert {d.delivery_id: d.body for _, d in landed} == {d.delivery_id: d.body for d in sent}
    partitions = sorted(tp.partition for tp in await partitions_of(settings, RAW.name))
    expected = DefaultPartitioner()(sent[0].key, partitions, partitions)
    assert {p for p, _ in landed} == {expected}


async def test_a_delivery_answered_before_the_next_is_sent_stays_before_it(
    publisher: KafkaPublisher, settings: Settings
) -> None:
    start = await end_offsets(settings, RAW.name)
    channel = f"order-{uuid.uuid4().hex}"
    sent = [delivery(channel, body(i)) for i in range(30)]
    for d in sent:
        await publisher.publish(d)
    landed = await stored(settings, start, channel)
    assert [d.delivery_id for _, d in landed] == [d.delivery_id for d in sent]
