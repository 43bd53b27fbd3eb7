"""One bad item of a delivery fails alone: its neighbours still become events, and the
failure names the item's path and the error's type, never the values it was given."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from contracts.envelope import Frozen
from contracts.messages import MessageReceived
from streams.normalize.errors import MalformedField, UnparseableDelivery
from streams.normalize.logic import ItemFailure, Normalised, normalise, normalise_parts
from streams.normalize.providers.common import Items, describe
from tests.unit.normalize.webhooks import delivery, fixture_bytes

# Values no error text may repeat: message text, a phone number, a token.
SECRET_TEXT = "my card is 4111 1111 1111 1111"
SECRET_PHONE = "15557654321"
SECRET_TOKEN = "tok_live_9f8e7d6c5b4a"
SECRETS = (SECRET_TEXT, SECRET_PHONE, SECRET_TOKEN, "4111", "input_value", "input")


def assert_clean(failure: ItemFailure) -> None:
    for secret in SECRETS:
        assert secret not in failure.error, failure


# --- Whapi: messages[] and statuses[] --------------------------------------------------


def whapi_messages(n: int) -> dict[str, Any]:
    body = orjson.loads(fixture_bytes("whapi", "text"))
    [template] = body["messages"]
    body["messages"] = [
        dict(template, id=f"iso-{i}", text={"body": f"message {i}"}, timestamp=1795166100 + i) for i in range(n)
    ]
    return body


WHAPI_BAD = {
    "missing id": (lambda m: m.pop("id"), "messages[2]: KeyError 'id'"),
    "bad timestamp": (lambda m: m.update(timestamp=f"{SECRET_TEXT} {SECRET_PHONE}"), "messages[2].timestamp: ValueError"),
    "timestamp of the wrong type": (lambda m: m.update(timestamp={"token": SECRET_TOKEN}), "messages[2].timestamp: ValueError"),
    "chat id of the wrong type": (lambda m: m.update(chat_id=[SECRET_PHONE]), "messages[2]: AttributeError"),
    "location not a number": (
        lambda m: m.update(type="location", location={"latitude": SECRET_PHONE + "x", "longitude": 1.0}),
        "ValidationError: float_parsing at messages[2].latitude",
    ),
}


@pytest.mark.parametrize("bad", list(WHAPI_BAD), ids=list(WHAPI_BAD))
def test_whapi_one_bad_message_among_five(bad: str) -> None:
    mutate, error = WHAPI_BAD[bad]
    body = whapi_messages(5)
    mutate(body["messages"][2])
    found = normalise_parts(delivery("whapi", body=orjson.dumps(body)))
    assert [e.provider_message_id for e in found.events] == ["iso-0", "iso-1", "iso-3", "iso-4"]
    assert all(isinstance(e, MessageReceived) for e in found.events)
    [failure] = found.failures
    assert failure == ItemFailure("messages[2]", error)
    assert_clean(failure)


def test_whapi_an_item_that_is_not_an_object() -> None:
    body = whapi_messages(3)
    body["messages"][1] = SECRET_TEXT
    found = normalise_parts(delivery("whapi", body=orjson.dumps(body)))
    assert [e.provider_message_id for e in found.events] == ["iso-0", "iso-2"]
    assert found.failures == [ItemFailure("messages[1]", "messages[1]: TypeError")]


def test_whapi_a_bad_status_beside_good_messages_and_statuses() -> None:
    body = whapi_messages(2)
    statuses = orjson.loads(fixture_bytes("whapi", "status_update"))["statuses"]
    statuses[0] = {k: v for k, v in statuses[0].items() if k != "recipient_id"}
    body["statuses"] = statuses
    found = normalise_parts(delivery("whapi", body=orjson.dumps(body)))
    assert [e.type for e in found.events] == ["message_received", "message_received", "status_updated"]
    assert found.failures == [ItemFailure("statuses[0]", "statuses[0].recipient_id: missing")]


def test_whapi_a_collection_that_is_not_a_list_fails_alone() -> None:
    body = whapi_messages(2)
    body["statuses"] = {"id": SECRET_TOKEN}
    found = normalise_parts(delivery("whapi", body=orjson.dumps(body)))
    assert len(found.events) == 2
    [failure] = found.failures
    assert failure == ItemFailure("statuses", "statuses: not a list (dict)")


# --- Meta: entry[].changes[].value.{messages,message_echoes,statuses}[] ---------------------

VALUE = "entry[0].changes[0].value"


def meta_body(n: int) -> dict[str, Any]:
    body = orjson.loads(fixture_bytes("meta", "text"))
    value = body["entry"][0]["changes"][0]["value"]
    [template] = value["messages"]
    value["messages"] = [
        dict(template, id=f"wamid.iso-{i}", text={"body": f"message {i}"}, timestamp=str(1795166100 + i))
        for i in range(n)
    ]
    return body


META_BAD = {
    "missing id": (lambda m: m.pop("id"), f"{VALUE}.messages[2]: KeyError 'id'"),
    "bad timestamp": (lambda m: m.update(timestamp=SECRET_TEXT), f"{VALUE}.messages[2].timestamp: ValueError"),
    "sender of the wrong type": (lambda m: m.update({"from": {"phone": SECRET_PHONE}}), f"{VALUE}.messages[2]: TypeError"),
}


@pytest.mark.parametrize("bad", list(META_BAD), ids=list(META_BAD))
def test_meta_one_bad_message_among_five(bad: str) -> None:
    mutate, error = META_BAD[bad]
    body = meta_body(5)
    mutate(body["entry"][0]["changes"][0]["value"]["messages"][2])
    found = normalise_parts(delivery("meta", body=orjson.dumps(body)))
    assert [e.provider_message_id for e in found.events] == [f"wamid.iso-{i}" for i in (0, 1, 3, 4)]
    [failure] = found.failures
    assert failure == ItemFailure(f"{VALUE}.messages[2]", error)
    assert_clean(failure)


def test_meta_a_bad_status_and_a_bad_change_fail_at_their_own_paths() -> None:
    body = meta_body(2)
    statuses = orjson.loads(fixture_bytes("meta", "status_update"))["entry"][0]["changes"][0]["value"]["statuses"]
    body["entry"][0]["changes"][0]["value"]["statuses"] = [statuses[0], {"status": "read", "token": SECRET_TOKEN}]
    second = copy.deepcopy(body["entry"][0])
    del second["changes"][0]["value"]["metadata"]  # no channel: every item of the change is lost with it
    third = meta_body(1)["entry"][0]
    third["changes"][0]["value"]["messages"][0]["id"] = "wamid.iso-third"
    body["entry"] += [second, third]
    found = normalise_parts(delivery("meta", body=orjson.dumps(body)))
    assert [e.type for e in found.events] == ["message_received", "message_received", "status_updated", "message_received"]
    assert found.events[-1].provider_message_id == "wamid.iso-third"
    assert found.failures == [
        ItemFailure(f"{VALUE}.statuses[1]", f"{VALUE}.statuses[1]: KeyError 'id'"),
        ItemFailure("entry[1].changes[0]", "entry[1].changes[0].value.metadata.phone_number_id: missing"),
    ]


def test_meta_an_entry_that_is_not_an_object() -> None:
    body = meta_body(1)
    body["entry"].insert(0, SECRET_TEXT)
    found = normalise_parts(delivery("meta", body=orjson.dumps(body)))
    assert [e.provider_message_id for e in found.events] == ["wamid.iso-0"]
    assert found.failures == [ItemFailure("entry[0]", "entry[0]: AttributeError")]


# --- Evolution: data (one object or a list) ---------------------------------------------


def evolution_body(n: int) -> dict[str, Any]:
    body = orjson.loads(fixture_bytes("evolution", "text"))
    template = body["data"]
    body["data"] = [
        dict(template, key=dict(template["key"], id=f"3EBISO{i}"), message={"conversation": f"message {i}"},
             messageTimestamp=1795166100 + i)
        for i in range(n)
    ]  # fmt: skip
    return body


EVOLUTION_BAD = {
    "missing key": (lambda d: d.pop("key"), "data[2]: KeyError 'key'"),
    "missing key id": (lambda d: d["key"].pop("id"), "data[2]: KeyError 'id'"),
    "bad timestamp": (lambda d: d.update(messageTimestamp=SECRET_TEXT), "data[2].messageTimestamp: ValueError"),
    "chat of the wrong type": (lambda d: d["key"].update(remoteJid=12345), "data[2]: AttributeError"),
}


@pytest.mark.parametrize("bad", list(EVOLUTION_BAD), ids=list(EVOLUTION_BAD))
def test_evolution_one_bad_message_among_five(bad: str) -> None:
    mutate, error = EVOLUTION_BAD[bad]
    body = evolution_body(5)
    mutate(body["data"][2])
    found = normalise_parts(delivery("evolution", body=orjson.dumps(body)))
    assert [e.provider_message_id for e in found.events] == ["3EBISO0", "3EBISO1", "3EBISO3", "3EBISO4"]
    [failure] = found.failures
    assert failure == ItemFailure("data[2]", error)
    assert_clean(failure)


def test_evolution_a_single_bad_data_object_is_its_only_item() -> None:
    body = orjson.loads(fixture_bytes("evolution", "text"))
    body["data"]["messageTimestamp"] = SECRET_TEXT
    found = normalise_parts(delivery("evolution", body=orjson.dumps(body)))
    assert found == Normalised([], [ItemFailure("data", "data.messageTimestamp: ValueError")])


def test_evolution_a_bad_receipt_among_good_ones() -> None:
    body = {
        "event": "messages.update", "instance": "acme-main", "date_time": "2026-11-20T09:16:00.000Z",
        "data": [
            {"keyId": "3EB-A", "remoteJid": "15550001234@s.whatsapp.net", "fromMe": True, "status": "READ"},
            {"keyId": "", "remoteJid": SECRET_PHONE + "@s.whatsapp.net", "fromMe": True, "status": "READ"},
            {"keyId": "3EB-B", "remoteJid": "15550001234@s.whatsapp.net", "fromMe": True, "status": "READ"},
        ],
    }  # fmt: skip
    found = normalise_parts(delivery("evolution", body=orjson.dumps(body)))
    assert [e.target_provider_message_id for e in found.events] == ["3EB-A", "3EB-B"]
    assert found.failures == [ItemFailure("data[1]", "data[1].keyId: missing")]


# --- Outbound: a list of sends ---------------------------------------------------------

SEND = {
    "provider": "meta", "channel_id": "100000000000001", "to": "+15550001234", "type": "text",
    "provider_message_id": "wamid.send-0", "text": "Yes Dana", "sent_at": "2026-11-20T09:16:00Z",
}  # fmt: skip


def test_outbound_one_bad_send_in_a_list() -> None:
    bad = dict(SEND, provider_message_id="wamid.send-1", text=SECRET_TEXT, to=SECRET_PHONE, sent_at="2026-11-20T09:16:00")
    sends = [SEND, bad, dict(SEND, provider_message_id="wamid.send-2")]
    found = normalise_parts(delivery("outbound", body=orjson.dumps(sends)))
    assert [e.provider_message_id for e in found.events] == ["wamid.send-0", "wamid.send-2"]
    [failure] = found.failures
    assert failure == ItemFailure("[1]", "ValidationError: timezone_aware at [1].sent_at")
    assert_clean(failure)


def test_outbound_a_single_bad_send_is_the_whole_delivery_and_its_error_carries_no_value() -> None:
    with pytest.raises(UnparseableDelivery) as caught:
        normalise_parts(delivery("outbound", body=orjson.dumps(dict(SEND, type=SECRET_TEXT, to=SECRET_PHONE))))
    assert str(caught.value) == "not an outbound message: ValidationError: literal_error at type"


# --- The envelope still fails whole; texts carry no values ------------------------------


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("whapi", b'{"messages": [], "channel_id": "' + SECRET_TOKEN.encode() + b'"'),  # truncated JSON
        ("whapi", orjson.dumps({"messages": [{"text": SECRET_TEXT}]})),  # no channel_id
        ("meta", orjson.dumps({"object": "whatsapp_business_account", "entry": SECRET_TEXT})),
        ("evolution", orjson.dumps({"event": "messages.upsert", "instance": "i", "date_time": SECRET_TEXT, "data": {}})),
        ("evolution", orjson.dumps({"event": "messages.upsert", "instance": "i", "sender": [SECRET_PHONE], "data": {}})),
    ],
)
def test_an_unreadable_envelope_fails_the_whole_delivery_without_its_values(provider: str, body: bytes) -> None:
    with pytest.raises(UnparseableDelivery) as caught:
        normalise_parts(delivery(provider, body=body))
    for secret in SECRETS:
        assert secret not in str(caught.value)


def test_the_strict_normalise_refuses_a_delivery_with_a_failed_item() -> None:
    body = whapi_messages(3)
    del body["messages"][1]["id"]
    with pytest.raises(UnparseableDelivery, match=r"1 item\(s\) failed; first messages\[1\]: KeyError 'id'"):
        normalise(delivery("whapi", body=orjson.dumps(body)))


def test_a_consent_keyword_still_follows_its_message_beside_a_failure() -> None:
    body = whapi_messages(3)
    body["messages"][0]["text"] = {"body": "STOP"}
    body["messages"][1]["timestamp"] = "never"
    found = normalise_parts(delivery("whapi", body=orjson.dumps(body)))
    assert [e.type for e in found.events] == ["message_received", "consent_changed", "message_received"]
    assert [f.path for f in found.failures] == ["messages[1]"]


# --- describe and Items ------------------------------------------------------------------


class _Model(Frozen):
    count: int
    tags: dict[str, int]


def test_describe_a_pydantic_error_by_location_and_type_only() -> None:
    try:
        _Model.model_validate({"count": SECRET_TEXT, "tags": {SECRET_TOKEN: "x", "ok": 1}})  # a key from the input
    except ValueError as exc:
        text = describe("messages[0]", exc)
    assert text == "ValidationError: int_parsing at messages[0].count; int_parsing at messages[0].tags.*"


def test_describe_keeps_only_code_authored_text() -> None:
    assert describe("x[1]", KeyError("id")) == "x[1]: KeyError 'id'"
    assert describe("x[1]", KeyError(SECRET_TEXT)) == "x[1]: KeyError"  # not a field name: could be input
    assert describe("x[1]", ValueError(f"invalid literal for int(): {SECRET_PHONE!r}")) == "x[1]: ValueError"
    assert describe("x[1]", MalformedField.missing("key.id")) == "x[1].key.id: missing"
    assert describe("", MalformedField.unreadable("date_time", OverflowError())) == "date_time: OverflowError"
    assert describe("", TypeError(SECRET_TEXT)) == "TypeError"


def test_items_leave_a_bug_in_the_normaliser_uncaught() -> None:
    def build(item: int) -> Any:
        raise ZeroDivisionError  # not malformed input: a bug, which must surface

    with pytest.raises(ZeroDivisionError):
        Items().each("messages", [1], build)


def test_normalised_is_frozen() -> None:
    found = Normalised([])
    with pytest.raises(AttributeError):
        found.events = []  # type: ignore[misc]
