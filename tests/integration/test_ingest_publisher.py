"""The Kafka publisher against the real broker: batches it builds itself land whole, on the
partition Kafka's default partitioner would pick, and in the order callers were answered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber
from aiokafka.partitioner import DefaultPartitioner

from contracts.raw import RawDelivery
from contracts.settings import Settings
from contracts.topics import RAW
from ingest.errors import BrokerUnavailable
from ingest.publisher import KafkaPublisher
from runtime.kafka import end_offsets, make_producer, partitions_of, read_range
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


async def test_a_producer_that_fails_every_write_is_replaced_and_writes_resume(settings: Settings) -> None:
    """After a broker restart an idempotent producer can stay wedged (every batch refused with
    OutOfOrderSequenceNumber). Once nothing has been acknowledged for ``stuck_after``, the
    publisher replaces it, and the next delivery lands."""
    made: list[AIOKafkaProducer] = []

    def factory(s: Settings) -> AIOKafkaProducer:
        producer = make_producer(s)
        if not made:  # the first producer is the wedged one

            async def refuse(*_args: object, **_kwargs: object) -> None:
                raise OutOfOrderSequenceNumber("injected")

            producer.send_batch = refuse  # type: ignore[method-assign]
        made.append(producer)
        return producer

    cfg = settings.model_copy(update={"ingest_publish_timeout_seconds": 1.0})
    publisher = KafkaPublisher(cfg, stuck_after=1.0, producer_factory=factory)
    await publisher.start()
    start = await end_offsets(settings, RAW.name)
    channel = f"wedged-{uuid.uuid4().hex}"
    refused = 0
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                await publisher.publish(d := delivery(channel, body(refused)))
                break
            except BrokerUnavailable:
                refused += 1
                assert asyncio.get_running_loop().time() < deadline, "the wedged producer was never replaced"
                await asyncio.sleep(0.2)
    finally:
        await publisher.stop()
    assert refused >= 2 and len(made) == 2
    assert [x.delivery_id for _, x in await stored(settings, start, channel)] == [d.delivery_id]
