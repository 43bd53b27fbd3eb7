"""The stage's handler: one wa.raw record to the good events' outputs plus one dead letter
per failed item, each holding the whole record so `msgmem dlq retry` can run it again."""

from __future__ import annotations

import orjson
import pytest

from contracts import deadletter, messages
from contracts.deadletter import DeadLettered
from contracts.messages import RecordRef
from contracts.settings import Settings
from streams.common.records import InputRecord
from streams.normalize.agent import STAGE, make_handler, outputs_for
from streams.normalize.errors import UnparseableDelivery
from streams.normalize.logic import NormaliseConfig
from tests.fakes.events import inline_delivery
from tests.unit.normalize.test_isolation import SECRETS, SECRET_PHONE, SECRET_TEXT, whapi_messages
from tests.unit.normalize.test_outbound import META_SEND
from tests.unit.normalize.webhooks import delivery


def record(body: bytes, offset: int = 41) -> InputRecord:
    d = delivery("whapi", body=body, delivery_id="dlv-agent")
    return InputRecord("wa.raw", 2, offset, d.key, d.body, tuple(d.kafka_headers()))


def test_good_events_and_one_dead_letter_per_failed_item() -> None:
    body = whapi_messages(5)
    body["messages"][1]["timestamp"] = f"{SECRET_TEXT} {SECRET_PHONE}"
    body["messages"][3].pop("id")
    rec = record(orjson.dumps(body))
    outputs = outputs_for(rec, NormaliseConfig())

    events = [o for o in outputs if o.topic == messages.TOPIC]
    assert [messages.decode_event(o.value).provider_message_id for o in events] == ["iso-0", "iso-2", "iso-4"]
    assert all(o.key == messages.decode_event(o.value).chat_key.encode() for o in events)
    assert all(dict(o.headers)["mm-type"] == b"message_received" for o in events)

    dead = [o for o in outputs if o.topic == deadletter.TOPIC]
    assert len(outputs) == len(events) + len(dead) == 5
    assert {o.key for o in dead} == {STAGE.encode()}
    letters = [DeadLettered.decode(o.value) for o in dead]
    assert [x.dead_letter_id for x in letters] == ["normalize:wa.raw:2:41#messages[1]", "normalize:wa.raw:2:41#messages[3]"]
    assert [x.part for x in letters] == ["messages[1]", "messages[3]"]
    assert [x.error for x in letters] == ["MalformedItem: messages[1].timestamp: ValueError", "MalformedItem: messages[3]: KeyError 'id'"]
    for x in letters:
        assert (x.stage, x.topic, x.partition, x.offset, x.attempts) == ("normalize", "wa.raw", 2, 41, 1)
        assert x.error_type == "MalformedItem"
        assert (x.key, x.value, tuple(x.kafka_headers)) == (rec.key, rec.value, rec.headers)  # the whole record
        assert not any(secret in x.error for secret in SECRETS)


def test_a_clean_delivery_has_no_dead_letter() -> None:
    outputs = outputs_for(record(orjson.dumps(whapi_messages(3))), NormaliseConfig())
    assert [o.topic for o in outputs] == [messages.TOPIC] * 3


def test_an_unreadable_envelope_still_raises_for_the_runner_to_dead_letter_whole() -> None:
    with pytest.raises(UnparseableDelivery):
        outputs_for(record(b"not json"), NormaliseConfig())


async def test_the_handler_keeps_its_signature() -> None:
    body = whapi_messages(2)
    body["messages"][0]["chat_id"] = None
    outputs = await make_handler(Settings())(record(orjson.dumps(body)))
    assert [o.topic for o in outputs] == [messages.TOPIC, deadletter.TOPIC]


def test_an_event_over_the_topic_limit_is_stored_with_its_raw_part_trimmed_and_flagged() -> None:
    body = whapi_messages(3)
    body["messages"][1]["text"] = {"body": "x" * 40_000}  # the event carries it twice: text and raw
    outputs = outputs_for(record(orjson.dumps(body)), NormaliseConfig(), max_event_bytes=60_000)
    events = [messages.decode_event(o.value) for o in outputs if o.topic == messages.TOPIC]
    assert [e.provider_message_id for e in events] == ["iso-0", "iso-1", "iso-2"]
    assert events[1].text == "x" * 40_000
    assert events[1].raw["msgmem_trimmed"] is True and events[1].raw["raw_bytes"] > 40_000
    assert "msgmem_trimmed" not in events[0].raw
    assert all(o.topic == messages.TOPIC for o in outputs)


def test_an_event_too_large_even_trimmed_is_one_failed_item_and_its_neighbours_flow() -> None:
    body = whapi_messages(3)
    body["messages"][1]["text"] = {"body": "x" * 80_000}
    outputs = outputs_for(record(orjson.dumps(body)), NormaliseConfig(), max_event_bytes=60_000)
    events = [messages.decode_event(o.value) for o in outputs if o.topic == messages.TOPIC]
    assert [e.provider_message_id for e in events] == ["iso-0", "iso-2"]
    [letter] = [DeadLettered.decode(o.value) for o in outputs if o.topic == deadletter.TOPIC]
    assert letter.part is not None and letter.part.startswith("event ") and "60,000 bytes" in letter.error
    assert "xxxx" not in letter.error


def test_inline_media_point_at_their_wa_raw_record_and_never_carry_the_bytes() -> None:
    record, event = inline_delivery("voice", "voice_note.ogg", partition=4, offset=1234)
    assert event.media is not None and event.media.inline_base64
    assert event.media.inline_record == RecordRef(topic="wa.raw", partition=4, offset=1234)
    [output] = [o for o in outputs_for(record, NormaliseConfig()) if o.topic == messages.TOPIC]
    assert len(output.value) < 4096 < 23485 < len(record.value)  # the voice note stayed in wa.raw

    d = delivery("evolution", "voice")
    plain = InputRecord("wa.raw", 4, 1235, d.key, d.body, tuple(d.kafka_headers()))
    [output] = outputs_for(plain, NormaliseConfig())
    assert messages.decode_event(output.value).media.inline_record is None  # type: ignore[union-attr]


def test_an_inline_record_a_sender_put_in_an_outbound_event_is_dropped() -> None:
    elsewhere = {"topic": "wa.raw", "partition": 0, "offset": 7}
    for inline in (False, True):
        send = {**META_SEND, "type": "image", "text": None,
                "media": {"provider_media_id": "1276732204818338", "inline_base64": inline, "inline_record": elsewhere}}  # fmt: skip
        d = delivery("outbound", body=orjson.dumps(send))
        [output] = outputs_for(InputRecord("wa.raw", 1, 99, d.key, d.body, tuple(d.kafka_headers())), NormaliseConfig())
        got = messages.decode_event(output.value).media.inline_record  # type: ignore[union-attr]
        assert got == (RecordRef(topic="wa.raw", partition=1, offset=99) if inline else None)


def test_unsupported_events_are_counted_by_provider_and_kind() -> None:
    from prometheus_client import CollectorRegistry

    from streams.normalize.agent import NormalizeMetrics
    from tests.unit.normalize.test_kinds import kind_bytes

    registry = CollectorRegistry()
    metrics = NormalizeMetrics(registry)
    presences = orjson.loads(kind_bytes("whapi", "presences.post"))
    presences["presences"] *= 3
    odd = {"messages": [dict(whapi_messages(1)["messages"][0], type="no such {type}")], "channel_id": "CH"}
    for body in (presences, orjson.loads(kind_bytes("whapi", "messages.post")), odd):
        outputs_for(record(orjson.dumps(body)), NormaliseConfig(), metrics=metrics)

    def count(kind: str) -> float | None:
        return registry.get_sample_value("msgmem_normalize_unsupported_total", {"provider": "whapi", "kind": kind})

    assert count("presences.post") == 3.0
    assert count("other") == 1.0  # a kind that is not a plain name, so no payload value becomes a label
    assert count("text") is None  # modelled messages are not counted
