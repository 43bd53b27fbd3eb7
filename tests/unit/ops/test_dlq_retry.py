"""`msgmem dlq retry` on letters of single items of a record (normalize: one letter per bad
message of a delivery): the stage answers with outputs, not an exception, so the retry
failed again exactly when they hold a letter with the retried letter's own id. Every retry
is logged first (who, when), then its outcome: the outputs with a DeadLetterResolved, or the
letter again."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from contracts import deadletter, messages
from contracts.deadletter import AnyLetterEvent, DeadLettered, DeadLetterResolved, DeadLetterRetried
from contracts.settings import Settings
from msgmem import dlq
from msgmem.dlq import Letter, retry
from streams.common.records import Output
from streams.normalize.errors import MalformedItem
from tests.unit.normalize.test_isolation import whapi_messages
from tests.unit.normalize.webhooks import delivery


class FakeOutputs:
    written: list[list[Output]]

    @classmethod
    async def start(cls, settings: Settings) -> FakeOutputs:
        return cls.instance

    async def write(self, outputs: list[Output]) -> None:
        self.written.append(list(outputs))

    async def stop(self) -> None:
        pass


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[list[Output]]:
    fake = FakeOutputs()
    fake.written = []
    FakeOutputs.instance = fake  # type: ignore[attr-defined]
    monkeypatch.setattr(dlq, "KafkaOutputs", FakeOutputs)
    return fake.written


def letter_for(body: dict, part: str | None, stage: str = "normalize") -> Letter:
    d = delivery("whapi", body=orjson.dumps(body), delivery_id="dlv-retry")
    return Letter(DeadLettered.of(
        stage, topic="wa.raw", partition=1, offset=7, key=d.key, value=d.body, headers=d.kafka_headers(),
        error=MalformedItem("then"), attempts=1, part=part,
    ))  # fmt: skip


def split(outputs: list[Output]) -> tuple[list[str], list[AnyLetterEvent]]:
    events = [messages.decode_event(o.value).provider_message_id for o in outputs if o.topic == messages.TOPIC]
    return events, [deadletter.decode(o.value) for o in outputs if o.topic == deadletter.TOPIC]


def logged_retry(batch: list[Output], letter_id: str, by: str = "msgmem") -> None:
    """The first write of every retry: who ran it, keyed by the stage."""
    [out] = batch
    marker = deadletter.decode(out.value)
    assert out.key == letter_id.split(":")[0].encode() and isinstance(marker, DeadLetterRetried)
    assert (marker.dead_letter_id, marker.retried_by, marker.outputs) == (letter_id, by, None)


async def test_an_item_that_still_fails_is_dead_lettered_again(writes: list[list[Output]]) -> None:
    body = whapi_messages(3)
    body["messages"][1].pop("id")
    [result] = await retry(Settings(), [letter_for(body, "messages[1]")], by="dana")
    assert not result.ok and result.detail == "MalformedItem: messages[1]: KeyError 'id'"
    first, outcome = writes
    logged_retry(first, "normalize:wa.raw:1:7#messages[1]", by="dana")
    events, [again] = split(outcome)  # as the live stage writes it: the good messages and the letter
    assert events == ["iso-0", "iso-2"]
    assert isinstance(again, DeadLettered) and again.dead_letter_id == "normalize:wa.raw:1:7#messages[1]"


async def test_a_record_the_stage_refuses_whole_is_dead_lettered_again_with_the_new_error(
    writes: list[list[Output]],
) -> None:
    item = letter_for(whapi_messages(1), None, stage="projector")  # the projector cannot decode a raw body
    [result] = await retry(Settings(), [item])
    assert not result.ok and result.detail.startswith("EventDecodeError: ")
    first, [out] = writes
    logged_retry(first, "projector:wa.raw:1:7")
    again = deadletter.decode(out.value)
    assert out.key == b"projector" and isinstance(again, DeadLettered)
    assert (again.dead_letter_id, again.error_type, again.attempts, again.value) == (
        "projector:wa.raw:1:7", "EventDecodeError", 1, item.letter.value)


async def test_a_fixed_item_rewrites_the_events_then_resolves(writes: list[list[Output]]) -> None:
    fixed = letter_for(whapi_messages(3), "messages[1]")  # the normaliser reads it now
    [result] = await retry(Settings(), [fixed])
    assert result.ok and result.detail == "3 output(s) written"
    first, batch = writes
    logged_retry(first, "normalize:wa.raw:1:7#messages[1]")
    events, [marker] = split(batch)
    assert events == ["iso-0", "iso-1", "iso-2"]
    assert isinstance(marker, DeadLetterResolved)
    assert (marker.dead_letter_id, marker.outputs) == ("normalize:wa.raw:1:7#messages[1]", 3)


async def test_the_records_other_bad_items_keep_their_letters(writes: list[list[Output]]) -> None:
    body = whapi_messages(3)
    body["messages"][2]["timestamp"] = "never"  # still broken; messages[0] (the retried part) is fine now
    [result] = await retry(Settings(), [letter_for(body, "messages[0]")])
    assert result.ok and result.detail == "2 output(s) written, 1 other part(s) dead-lettered"
    events, [other, marker] = split(writes[1])
    assert events == ["iso-0", "iso-1"]
    assert isinstance(other, DeadLettered) and other.dead_letter_id == "normalize:wa.raw:1:7#messages[2]"
    assert marker.dead_letter_id == "normalize:wa.raw:1:7#messages[0]"


async def test_a_whole_record_letter_from_before_isolation_closes_and_its_bad_items_get_letters(
    writes: list[list[Output]],
) -> None:
    body = whapi_messages(3)
    body["messages"][1].pop("id")
    [result] = await retry(Settings(), [letter_for(body, None)])
    assert result.ok
    events, [item, marker] = split(writes[1])
    assert events == ["iso-0", "iso-2"]
    assert isinstance(item, DeadLettered) and item.part == "messages[1]"
    assert isinstance(marker, DeadLetterResolved)
    assert marker.dead_letter_id == "normalize:wa.raw:1:7" and marker.resolved_at <= datetime.now(UTC)
