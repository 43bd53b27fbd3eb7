"""Ingest's outbound endpoint deliveries -> MessageSent under the sending provider's ids."""

from __future__ import annotations

import orjson
import pytest

from contracts.messages import MessageSent
from streams.normalize.errors import UnparseableDelivery
from streams.normalize.logic import normalise
from tests.unit.normalize.webhooks import SHA256, delivery

META_SEND = {
    "provider": "meta",
    "channel_id": "100000000000001",
    "to": "+15550001234",
    "provider_message_id": "wamid.GAtzLWVjaG8tREM3NjVBRDZGOUNEMTFCNTE4RTE=",
    "type": "text",
    "text": "Yes Dana, Thursday after 3 pm.",
    "sent_at": "2026-11-20T09:16:00Z",
    "sender_id": "15550001000",
    "sender_name": "support-bot",
    "reply_to": "wamid.GAtzLXRleHQtQjBGQTI2QTk2QkUwNUM3MkVDN0I=",
}


def test_outbound_send_becomes_message_sent_under_the_sending_provider() -> None:
    [event] = normalise(delivery("outbound", body=orjson.dumps(META_SEND)))
    assert isinstance(event, MessageSent)
    assert (event.provider, event.channel_id, event.chat_id) == ("meta", "100000000000001", "15550001234")
    assert event.chat_key == "meta:100000000000001:15550001234"
    assert (event.origin, event.direction, event.sender_name) == ("agent", "outbound", "support-bot")
    assert event.reply_to_provider_message_id == META_SEND["reply_to"]
    assert event.raw == META_SEND


def test_outbound_send_and_its_statuses_share_the_message_id() -> None:
    [event] = normalise(delivery("outbound", body=orjson.dumps(META_SEND)))
    statuses = normalise(delivery("meta", "status_update"))
    assert {s.target_message_id for s in statuses} == {event.message_id}


def test_outbound_send_and_a_provider_echo_are_one_event() -> None:
    [echo] = normalise(delivery("meta", "text_outbound"))
    [sent] = normalise(delivery("outbound", body=orjson.dumps(META_SEND)))
    assert (sent.event_id, sent.message_id) == (echo.event_id, echo.message_id)


def test_media_sha256_is_normalised_and_groups_need_no_jid() -> None:
    send = {
        **META_SEND, "to": "Y3VzdG9tZXItZ3JvdXAtMDAwMQ", "is_group": True, "type": "image", "text": None,
        "caption": "Your receipt",
        "media": {"provider_media_id": "1276732204818338", "sha256": "+tvnAP50CDH1c9fGLvDhO3m/AKFPknQdRjV7fZnAEx8="},
    }  # fmt: skip
    [event] = normalise(delivery("outbound", body=orjson.dumps(send)))
    assert (event.chat_id, event.is_group, event.contact_phone) == ("Y3VzdG9tZXItZ3JvdXAtMDAwMQ", True, None)
    assert event.media.sha256 == SHA256["receipt_photo.jpg"]


def test_a_list_of_sends() -> None:
    second = {**META_SEND, "provider_message_id": "wamid.second"}
    assert len(normalise(delivery("outbound", body=orjson.dumps([META_SEND, second])))) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"provider": "carrier-pigeon"},
        {"sent_at": "2026-11-20T09:16:00"},  # naive
        {"provider_message_id": ""},
        {"type": "hologram"},
    ],
)
def test_invalid_sends_are_unparseable(change: dict) -> None:
    with pytest.raises(UnparseableDelivery, match="not an outbound message"):
        normalise(delivery("outbound", body=orjson.dumps({**META_SEND, **change})))


def test_meta_cloud_is_accepted_as_an_alias_of_meta() -> None:
    [event] = normalise(delivery("outbound", body=orjson.dumps({**META_SEND, "provider": "meta_cloud"})))
    assert event.provider == "meta"
