"""The normalize worker (a real Faust process) turns wa.raw deliveries into wa.messages
events and sends an unreadable delivery to wa.deadletter while the rest keeps flowing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import deadletter, messages, raw
from contracts.deadletter import DeadLettered
from contracts.raw import RawDelivery
from contracts.settings import Settings
from runtime.kafka import end_offsets, make_producer
from tests.conftest import FIXTURES
from tests.services import running
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration


async def test_deliveries_become_events_and_poison_goes_to_the_dead_letter_topic(
    settings: Settings, tmp_path: Path
) -> None:
    start_messages = await end_offsets(settings, messages.TOPIC)
    start_dead = await end_offsets(settings, deadletter.TOPIC)
    batch = RawDelivery(
        delivery_id=str(uuid.uuid4()), provider="meta", received_at=datetime.now(UTC),
        body=(FIXTURES / "webhooks" / "meta_cloud" / "batch.json").read_bytes(),
    )
    poison = RawDelivery(
        delivery_id=str(uuid.uuid4()), provider="whapi", channel="poison", received_at=datetime.now(UTC),
        body=b"this is not json",
    )
    after = RawDelivery(
        delivery_id=str(uuid.uuid4()), provider="whapi", channel="poison", received_at=datetime.now(UTC),
        body=(FIXTURES / "webhooks" / "whapi" / "text.json").read_bytes(),
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        sent = {}
        for d in (batch, poison, after):  # poison and after share a key, so a partition
            sent[d.delivery_id] = await producer.send_and_wait(raw.TOPIC, d.body, key=d.key, headers=d.kafka_headers())
    finally:
        await producer.stop()

    with running("normalize", settings, tmp_path):

        async def events() -> list[messages.MessageEvent]:
            records = await read_since(settings, messages.TOPIC, start_messages)
            found = [messages.decode_event(r.value) for r in records]
            mine = [e for e in found if e.delivery_id in {batch.delivery_id, after.delivery_id}]
            seen = {e.delivery_id for e in mine}  # two keys, two partitions: wait for both
            return mine if {batch.delivery_id, after.delivery_id} <= seen else []

        found = await eventually(events)
        at = sent[poison.delivery_id]  # found by its coordinates

        async def poison_letters() -> list[DeadLettered]:
            letters = [DeadLettered.decode(r.value) for r in await read_since(settings, deadletter.TOPIC, start_dead)
                       if r.key == b"normalize"]  # fmt: skip
            return [x for x in letters if (x.topic, x.partition, x.offset) == (raw.TOPIC, at.partition, at.offset)]

        letters = await eventually(poison_letters)

    from_batch = [e for e in found if e.delivery_id == batch.delivery_id]
    assert {e.type for e in from_batch} >= {"message_received", "status_updated"}
    assert len(from_batch) >= 4  # three messages and a status in one Meta delivery
    for event in found:
        assert event.chat_key.startswith(f"{event.provider}:")
    [letter] = letters[-1:]
    assert letter.stage == "normalize" and letter.topic == raw.TOPIC and letter.value == b"this is not json"
    assert letter.error_type == "UnparseableDelivery" and letter.attempts == 1
