"""`msgmem replay` re-runs a stage over a range of its input beside the live workers and
writes outputs with the same ids as the first run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import messages, raw
from contracts.raw import RawDelivery
from contracts.settings import Settings
from msgmem.kafka import end_offsets, make_producer, read_range
from msgmem.replay import parse_position, replay
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration


async def test_replay_of_normalize_reproduces_the_same_event_ids(settings: Settings) -> None:
    before = await end_offsets(settings, raw.TOPIC)
    deliveries = [
        RawDelivery(delivery_id=str(uuid.uuid4()), provider="meta", received_at=datetime.now(UTC),
                    body=(FIXTURES / "webhooks" / "meta_cloud" / name).read_bytes())
        for name in ("text.json", "batch.json", "reaction.json")
    ]
    producer = make_producer(settings)
    await producer.start()
    try:
        for d in deliveries:
            await producer.send_and_wait(raw.TOPIC, d.body, key=d.key, headers=d.kafka_headers())
    finally:
        await producer.stop()
    after = await end_offsets(settings, raw.TOPIC)
    [tp] = [tp for tp in after if after[tp] > before[tp]]  # one key: one partition

    dry = await replay(settings, "normalize", start=before[tp], until=after[tp], dry_run=True, progress=False)
    assert dry.inputs >= 3 and dry.outputs >= 6 and dry.failures == 0

    start = await end_offsets(settings, messages.TOPIC)
    first = await replay(settings, "normalize", start=before[tp], until=after[tp], progress=False)
    middle = await end_offsets(settings, messages.TOPIC)
    second = await replay(settings, "normalize", start=before[tp], until=after[tp], progress=False)
    assert first.outputs == second.outputs == dry.outputs

    def ids(records):  # type: ignore[no-untyped-def]
        return sorted(messages.decode_event(r.value).event_id for r in records
                      if messages.decode_event(r.value).delivery_id in {d.delivery_id for d in deliveries})

    run1 = ids(await read_range(settings, messages.TOPIC, start, middle))
    run2 = ids(await read_range(settings, messages.TOPIC, middle, await end_offsets(settings, messages.TOPIC)))
    # Other tests may share the partition; compare only this test's events.
    assert run1 == run2 and 6 <= len(run1) <= dry.outputs

    chat = messages.decode_event((await read_range(settings, messages.TOPIC, start, middle))[0].value).chat_key
    only = await replay(settings, "normalize", start=before[tp], until=after[tp], chat=chat, dry_run=True, progress=False)
    assert 0 < only.outputs <= dry.outputs

    future = await replay(settings, "normalize", start=parse_position((datetime.now(UTC) + timedelta(hours=1)).isoformat()),
                          until=None, dry_run=True, progress=False)
    assert future.inputs == 0


def test_positions_are_offsets_or_aware_times() -> None:
    assert parse_position("42") == 42
    assert parse_position("2026-11-20T09:00:00Z") == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert parse_position(None) is None
    with pytest.raises(ValueError, match="timezone"):
        parse_position("2026-11-20T09:00:00")
