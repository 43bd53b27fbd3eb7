"""Operating the pipeline: `msgmem status` shows each stage's lag and the dead letters;
a dead letter retried after its fault is fixed is processed once and not retried again."""

from __future__ import annotations

import dataclasses

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

import asyncpg
from aiokafka.structs import RecordMetadata

from contracts import deadletter, messages, raw
from contracts.deadletter import DeadLettered
from contracts.messages import decode_event
from contracts.raw import RawDelivery
from contracts.settings import Settings
from msgmem.dlq import load, retry, select
from runtime.kafka import end_offsets, make_producer, read_range
from msgmem.status import collect, render
from projections.messages import main as messages_main
from tests.integration import test_projector as projector_tests
from streams.normalize import providers
from tests.conftest import FIXTURES
from tests.integration.test_projector import caught_up, channel, produce, projector, start_at_end
from tests.services import running
from tests.unit.projections.factory import Chat
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration


def unknown_provider_delivery() -> RawDelivery:
    """A delivery of a provider nobody has written a normaliser for yet: normalize dead-letters it."""
    return RawDelivery(
        delivery_id=str(uuid.uuid4()), provider="waha", channel="TESTCH-A1B2C", received_at=datetime.now(UTC),
        body=(FIXTURES / "webhooks" / "whapi" / "text.json").read_bytes(),
    )


async def append_raw(settings: Settings, delivery: RawDelivery) -> RecordMetadata:
    """Append ``delivery`` to wa.raw as ingest does; where it landed."""
    producer = make_producer(settings)
    await producer.start()
    try:
        return await producer.send_and_wait(raw.TOPIC, delivery.body, key=delivery.key,
                                            headers=delivery.kafka_headers())  # fmt: skip
    finally:
        await producer.stop()


async def test_fixed_fault_retry_processes_the_letter_once(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = unknown_provider_delivery()
    await append_raw(settings, delivery)

    with running("normalize", settings, tmp_path):
        async def letter_for_delivery():  # type: ignore[no-untyped-def]
            letters = await load(settings)
            return [x for x in letters.values() if x.open and x.letter.value == delivery.body and
                    dict(x.letter.kafka_headers).get("mm-delivery-id") == delivery.delivery_id.encode()]

        [open_letter] = await eventually(letter_for_delivery)

        async def normalize_caught_up():  # type: ignore[no-untyped-def]
            status = await collect(settings)
            return status if status.lag_by_stage().get("normalize") == 0 else None

        status = await eventually(normalize_caught_up)
    assert status.dead_letters_open >= 1
    assert "normalize" in render(status) and "dead letters:" in render(status)
    assert open_letter.letter.stage == "normalize" and open_letter.letter.error_type == "UnparseableDelivery"

    # Still broken: the retry fails and the letter is open again, one failure more.
    [failed] = await retry(settings, [open_letter])
    assert not failed.ok and "waha" in failed.detail
    reopened = (await load(settings))[open_letter.letter.dead_letter_id]
    assert (reopened.state, reopened.failures) == ("open", open_letter.failures + 1)

    # The fix ships (a normaliser for the new provider); the retry now succeeds, once, and the
    # live projector puts the message in chat_messages.
    monkeypatch.setitem(providers.NORMALISERS, "waha", providers.NORMALISERS["whapi"])
    await start_at_end(db, settings)
    async with projector(settings):
        start = await end_offsets(settings, messages.TOPIC)
        [ok] = await retry(settings, [open_letter])
        assert ok.ok
        written = await read_range(settings, messages.TOPIC, start, await end_offsets(settings, messages.TOPIC))
        events = [messages.decode_event(r.value) for r in written]
        [event] = [e for e in events if e.delivery_id == delivery.delivery_id]
        assert event.type == "message_received"
        await caught_up(db, settings)
        assert await rows_of(db, event.chat_key) == [(event.message_id, event.text)]

        letters = await load(settings)
        assert not letters[open_letter.letter.dead_letter_id].open
        assert select(letters, stage="normalize", ids=[open_letter.letter.dead_letter_id], everything=False) == []
        # Even forced through again (a second operator with a stale list), the row stays one.
        [again] = await retry(settings, [open_letter])
        assert again.ok
        await caught_up(db, settings)
    assert await rows_of(db, event.chat_key) == [(event.message_id, event.text)]


async def rows_of(db: asyncpg.Connection, chat: str) -> list[tuple[str, str | None]]:
    rows = await db.fetch("select id, body from chat_messages where chat_key = $1 order by id", chat)
    return [(r["id"], r["body"]) for r in rows]


async def test_a_projection_letter_is_retried_by_appending_its_record_again_once_it_decodes(
    settings: Settings, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector cannot read an event a newer normaliser wrote (here: a type it does not know
    yet), so it dead-letters it. `dlq retry` refuses while today's code still cannot decode it;
    after the upgrade it appends the record to wa.messages again, and the projector applies it once."""
    chat = Chat(channel=channel())
    event = chat.received("pm-legacy", "hello from the future", t=1)
    value = messages.encode_event(event).replace(b'"message_received"', b'"message_received_v9"')
    await start_at_end(db, settings)
    dead_start = await end_offsets(settings, deadletter.TOPIC)
    async with projector(settings):
        await produce(settings, [(chat.key.encode(), value)])
        await caught_up(db, settings)

    async def letter():  # type: ignore[no-untyped-def]
        found = [x for x in (await load(settings)).values()
                 if x.open and x.letter.stage == "projector" and x.letter.value == value]  # fmt: skip
        return found

    [open_letter] = await eventually(letter)
    assert await rows_of(db, chat.key) == []
    [refused] = await retry(settings, [open_letter])
    assert not refused.ok and "message_received_v9" in refused.detail

    def upgraded(data: bytes):  # type: ignore[no-untyped-def]  # the new code reads the new type
        return decode_event(data.replace(b'"message_received_v9"', b'"message_received"'))

    new_code = dataclasses.replace(messages_main.PROJECTOR, decode=upgraded)  # `dlq retry` and the projector
    monkeypatch.setattr(messages_main, "PROJECTOR", new_code)
    monkeypatch.setattr(projector_tests, "PROJECTOR", new_code)
    async with projector(settings):
        [ok] = await retry(settings, [open_letter])
        assert ok.ok and ok.detail == "1 output(s) written"
        await caught_up(db, settings)
    assert await rows_of(db, chat.key) == [(event.message_id, "hello from the future")]
    assert select(await load(settings), stage="projector", ids=[open_letter.letter.dead_letter_id], everything=False) == []
    written = [deadletter.decode(r.value) for r in await read_since(settings, deadletter.TOPIC, dead_start)]
    about = [type(x).__name__ for x in written if x.dead_letter_id == open_letter.letter.dead_letter_id]
    assert about == ["DeadLettered", "DeadLetterRetried", "DeadLettered", "DeadLetterRetried", "DeadLetterResolved"]
    elsewhere = [x for x in written if isinstance(x, DeadLettered) and x.value == value
                 and x.dead_letter_id != open_letter.letter.dead_letter_id]  # fmt: skip
    assert elsewhere == []  # the re-appended record was applied, not dead-lettered at its new offset
