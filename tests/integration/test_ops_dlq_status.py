"""Operating the pipeline: `msgmem status` shows each stage's lag and the dead letters;
a dead letter retried after its fault is fixed is processed once and not retried again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import messages, raw
from contracts.raw import RawDelivery
from contracts.settings import Settings
from msgmem.dlq import load, retry, select
from msgmem.kafka import end_offsets, make_producer, read_range
from msgmem.status import collect, render
from streams.normalize import providers
from tests.conftest import FIXTURES
from tests.services import running
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_fixed_fault_retry_processes_the_letter_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A provider nobody had written a normaliser for yet: the delivery is dead-lettered.
    delivery = RawDelivery(
        delivery_id=str(uuid.uuid4()), provider="waha", channel="TESTCH-A1B2C", received_at=datetime.now(UTC),
        body=(FIXTURES / "webhooks" / "whapi" / "text.json").read_bytes(),
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(raw.TOPIC, delivery.body, key=delivery.key, headers=delivery.kafka_headers())
    finally:
        await producer.stop()

    with running("normalize", settings, tmp_path):
        async def letter_for_delivery():  # type: ignore[no-untyped-def]
            letters = await load(settings)
            return [x for x in letters.values() if x.open and x.letter.value == delivery.body and
                    dict(x.letter.kafka_headers).get("mm-delivery-id") == delivery.delivery_id.encode()]

        [open_letter] = await eventually(letter_for_delivery)

        async def caught_up():  # type: ignore[no-untyped-def]
            status = await collect(settings)
            return status if status.lag_by_stage().get("normalize") == 0 else None

        status = await eventually(caught_up)
    assert status.dead_letters_open >= 1
    assert "normalize" in render(status) and "dead letters:" in render(status)
    assert open_letter.letter.stage == "normalize" and open_letter.letter.error_type == "UnparseableDelivery"

    # Still broken: the retry fails and the letter stays open.
    [failed] = await retry(settings, [open_letter])
    assert not failed.ok and "waha" in failed.detail

    # The fix ships (a normaliser for the new provider); the retry now succeeds, once.
    monkeypatch.setitem(providers.NORMALISERS, "waha", providers.NORMALISERS["whapi"])
    start = await end_offsets(settings, messages.TOPIC)
    [ok] = await retry(settings, [open_letter])
    assert ok.ok
    written = await read_range(settings, messages.TOPIC, start, await end_offsets(settings, messages.TOPIC))
    events = [messages.decode_event(r.value) for r in written]
    assert [e.type for e in events if e.delivery_id == delivery.delivery_id] == ["message_received"]

    letters = await load(settings)
    assert not letters[open_letter.letter.dead_letter_id].open
    assert select(letters, stage="normalize", ids=[open_letter.letter.dead_letter_id], everything=False) == []
