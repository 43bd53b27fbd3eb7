"""wa.messages contract: the wire codec, upcasting and the committed JSON Schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from contracts import messages
from contracts.envelope import EventDecodeError
from contracts.export_schemas import SCHEMA_DIR, render, schemas
from contracts.messages import (
    EVENT_MODELS,
    MessageDeleted,
    MessageReceived,
    decode_event,
    encode_event,
)
from streams.normalize.logic import normalise
from tests.unit.normalize.webhooks import all_cases, delivery


def _deleted(**overrides: object) -> MessageDeleted:
    fields: dict[str, object] = {
        "event_id": "e1",
        "chat_key": "whapi:CH:15550001234",
        "occurred_at": datetime(2026, 11, 20, 10, 15, tzinfo=timezone(timedelta(hours=1))),
        "received_at": datetime(2026, 11, 20, 9, 16, tzinfo=UTC),
        "provider": "whapi",
        "channel_id": "CH",
        "delivery_id": "d1",
        "chat_id": "15550001234",
        "target_provider_message_id": "m1",
        "target_message_id": "mid-1",
        "direction": "inbound",
    }
    return MessageDeleted(**{**fields, **overrides})


def test_timestamps_are_stored_in_utc() -> None:
    event = _deleted()
    assert event.occurred_at == datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    assert event.occurred_at.tzinfo == UTC


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError):
        _deleted(occurred_at=datetime(2026, 11, 20, 9, 15))


def test_events_are_frozen() -> None:
    with pytest.raises(ValidationError):
        _deleted().chat_id = "other"  # type: ignore[misc]


def test_wire_name_is_the_type_literal_never_a_class_path() -> None:
    payload = orjson.loads(encode_event(_deleted()))
    assert payload["type"] == "message_deleted"
    assert payload["schema_version"] == 1
    assert "MessageDeleted" not in encode_event(_deleted()).decode()
    assert {m.model_fields["type"].default for m in EVENT_MODELS} == {
        "message_received", "message_sent", "message_edited", "message_deleted", "reaction_added",
        "reaction_removed", "status_updated", "consent_changed", "message_unsupported", "provider_event_unsupported",
    }  # fmt: skip


@pytest.mark.parametrize(("provider", "case"), all_cases())
def test_every_fixture_event_round_trips(provider: str, case: str) -> None:
    for event in normalise(delivery(provider, case)):
        data = encode_event(event)
        assert decode_event(data) == event
        assert encode_event(decode_event(data)) == data


def test_decode_ignores_fields_it_does_not_know() -> None:
    payload = orjson.loads(encode_event(_deleted()))
    assert decode_event(orjson.dumps({**payload, "added_later": 1})) == _deleted()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "message_teleported"}', "unknown event type"),
        (b'{"type": "message_deleted", "schema_version": 99}', "newer"),
        (b'{"type": "message_deleted", "schema_version": 1}', "ValidationError: missing at"),
    ],
)
def test_decode_rejects_poison(data: bytes, message: str) -> None:
    with pytest.raises(EventDecodeError, match=message):
        decode_event(data)


def _v0_deleted_to_v1(payload: dict) -> dict:
    """What a real upcaster looks like: v0 called the target ``target_id``."""
    payload["target_provider_message_id"] = payload.pop("target_id")
    return payload


@pytest.mark.parametrize(
    ("stored", "expected_target"),
    [
        ({"schema_version": 0, "target_id": "m-old"}, "m-old"),  # lifted by the upcaster
        ({"schema_version": 1, "target_provider_message_id": "m-new"}, "m-new"),  # already current
    ],
)
def test_upcasters_lift_old_payloads_to_the_current_version(
    monkeypatch: pytest.MonkeyPatch, stored: dict, expected_target: str
) -> None:
    monkeypatch.setitem(messages.UPCASTERS, ("message_deleted", 0), _v0_deleted_to_v1)
    payload = orjson.loads(encode_event(_deleted()))
    del payload["target_provider_message_id"]
    event = decode_event(orjson.dumps({**payload, **stored}))
    assert isinstance(event, MessageDeleted)
    assert event.target_provider_message_id == expected_target
    assert event.schema_version == 1


def test_a_missing_upcaster_is_an_error() -> None:
    payload = {**orjson.loads(encode_event(_deleted())), "schema_version": 0}
    with pytest.raises(EventDecodeError, match="no upcaster"):
        decode_event(orjson.dumps(payload))


def test_message_received_defaults() -> None:
    assert MessageReceived.model_fields["direction"].default == "inbound"
    assert MessageReceived.model_fields["origin"].default == "user"


@pytest.mark.parametrize("name", sorted(schemas()))
def test_committed_json_schemas_match_the_models(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.exists(), f"{path} is missing: run python -m contracts.export_schemas"
    assert path.read_text(encoding="utf-8") == render(schemas()[name]), (
        f"{path} is out of date: run python -m contracts.export_schemas"
    )


def test_export_writes_the_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from contracts.export_schemas import export_schemas

    written = export_schemas(tmp_path)
    assert {"outbound.json", "wa.messages.json"} <= {p.name for p in written}
    schema = orjson.loads((tmp_path / "wa.messages.json").read_bytes())
    assert schema["title"] == "wa.messages"
    assert schema["discriminator"]["propertyName"] == "type"
    assert len(schema["oneOf"]) == len(EVENT_MODELS)
