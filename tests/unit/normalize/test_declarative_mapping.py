"""The declarative provider's normaliser: the README's worked example (Luminous), and
nothing a mapping cannot read is dropped."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from contracts.provider_mapping import ProviderMapping, load_mapping
from contracts.raw import RawDelivery
from streams.normalize.logic import NormaliseConfig, normalise_parts
from streams.normalize.providers.declarative import DeclarativeNormaliser
from tests.unit.normalize.webhooks import RECEIVED_AT

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "providers"


def luminous() -> DeclarativeNormaliser:
    return DeclarativeNormaliser(load_mapping(EXAMPLES / "luminous.yaml"))


def delivery(body: bytes | dict, provider: str = "luminous") -> RawDelivery:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return RawDelivery(delivery_id="dlv-1", provider=provider, received_at=RECEIVED_AT, body=data)


def test_the_worked_example_message_is_an_image_with_its_media_reference() -> None:
    found = luminous()(delivery((EXAMPLES / "luminous-message.json").read_bytes()))
    assert found.failures == []
    [event] = found.events
    assert (event.type, event.provider, event.channel_id) == ("message_received", "luminous", "lum-acme-01")
    assert (event.chat_id, event.chat_key, event.contact_name) == ("15550001234", "luminous:lum-acme-01:15550001234", "Dana Silva")
    assert (event.provider_message_id, event.sender_id, event.message_type) == ("LUM-7f3a9c21", "15550001234", "image")
    assert event.caption == "Here is the signed receipt" and event.text is None
    assert event.occurred_at.isoformat() == "2026-11-20T09:15:00+00:00"
    assert event.media is not None and (event.media.url, event.media.mime_type, event.media.size_bytes) == (
        "https://files.luminous.example/att-91.jpg", "image/jpeg", 33954,
    )
    assert event.media.sha256 == "fadbe700fe740831f573d7c62ef0e13b79bf00a14f92741d46357b7d99c0131f"


def test_the_worked_example_status_is_a_read_receipt() -> None:
    [event] = luminous()(delivery((EXAMPLES / "luminous-status.json").read_bytes())).events
    assert (event.type, event.status, event.target_provider_message_id, event.chat_id) == (
        "status_updated", "read", "LUM-out-0042", "15550001234",
    )


def test_outbound_message_is_sent_and_the_config_routes_to_the_mapping() -> None:
    body = orjson.loads((EXAMPLES / "luminous-message.json").read_bytes())
    body["message"] |= {"direction": "outgoing", "kind": "text", "body": "Thursday after 3 pm", "attachment": None}
    config = NormaliseConfig.build(declarative={"luminous": luminous()})
    [event] = normalise_parts(delivery(body), config).events
    assert (event.type, event.text, event.media, event.contact_name) == ("message_sent", "Thursday after 3 pm", None, "Dana Silva")


def test_an_item_without_an_id_is_kept_as_an_unsupported_event() -> None:
    body = orjson.loads((EXAMPLES / "luminous-message.json").read_bytes())
    del body["message"]["id"]
    found = luminous()(delivery(body))
    assert found.failures == []
    [event] = found.events
    assert (event.type, event.provider_type) == ("provider_event_unsupported", "message.received")
    assert event.raw == body["message"] and "found no id" in (event.reason or "")


def test_unknown_types_members_and_statuses_are_kept_and_counted_never_dropped() -> None:
    body = orjson.loads((EXAMPLES / "luminous-message.json").read_bytes())
    body["message"]["kind"] = "poll"
    body["contact"] = {"phone": "+15550005678", "name": "Ravi"}
    body["status"] = {"message_id": "LUM-1", "to": "+15550001234", "state": "archived"}
    events = luminous()(delivery(body)).events
    assert [(e.type, e.provider_type) for e in events] == [
        ("message_unsupported", "poll"), ("message_unsupported", "status:archived"),
        ("provider_event_unsupported", "message.received"),
    ]
    assert events[2].raw == body["contact"]


def test_an_empty_delivery_still_leaves_one_event() -> None:
    [event] = luminous()(delivery({"event": "session.ping", "account_id": "lum-acme-01"})).events
    assert (event.type, event.provider_type, event.reason) == ("provider_event_unsupported", "session.ping", "a delivery with no items")


def test_a_value_of_the_wrong_kind_fails_its_item_by_field_path_without_the_value() -> None:
    body = orjson.loads((EXAMPLES / "luminous-message.json").read_bytes())
    body["message"]["created_at"] = "not-a-time-SECRET"
    body["message"]["from"]["name"] = {"nested": "SECRET"}
    found = luminous()(delivery(body))
    [failure] = found.failures
    assert failure.path == "message" and failure.error == "message.sender_name: not a string (object)"
    assert "SECRET" not in failure.error


def test_a_delivery_without_its_channel_is_unparseable() -> None:
    from streams.normalize.errors import UnparseableDelivery

    with pytest.raises(UnparseableDelivery, match="names no channel"):
        luminous()(delivery({"event": "message.received"}))


def test_whapi_mapping_loads_and_keeps_a_patch_that_is_no_edit() -> None:
    mapping: ProviderMapping = load_mapping(EXAMPLES / "whapi.yaml")
    body = {"event": {"type": "messages", "event": "patch"}, "channel_id": "CH",
            "messages_updates": [{"id": "M1", "after_update": {"id": "M1", "chat_id": "15550001234@s.whatsapp.net",
                                                                "type": "poll"}, "changes": ["poll"]}]}  # fmt: skip
    [event] = DeclarativeNormaliser(mapping)(delivery(body, mapping.name)).events
    assert (event.type, event.provider_type, event.chat_id) == ("provider_event_unsupported", "messages.patch", "15550001234")
