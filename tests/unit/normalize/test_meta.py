"""WhatsApp Cloud API (Meta) fixtures -> events, with concrete values."""

from __future__ import annotations

import orjson
import pytest

from contracts.ids import message_id
from contracts.messages import (
    ContactCard,
    Location,
    MessageReceived,
    MessageSent,
    MessageUnsupported,
    ProviderEventUnsupported,
    ReactionAdded,
    ReactionRemoved,
    StatusError,
    StatusUpdated,
)
from streams.normalize.logic import normalise
from tests.unit.normalize.webhooks import SHA256, at, delivery, fixture_bytes

CH = "100000000000001"  # metadata.phone_number_id
DANA = "15550001234"
ECHO_ID = "wamid.GAtzLWVjaG8tREM3NjVBRDZGOUNEMTFCNTE4RTE="


def one(case: str):  # type: ignore[no-untyped-def]
    events = normalise(delivery("meta", case))
    assert len(events) == 1, events
    return events[0]


def test_text() -> None:
    event = one("text")
    assert isinstance(event, MessageReceived)
    assert (event.provider, event.channel_id) == ("meta", CH)
    assert event.chat_key == f"meta:{CH}:{DANA}"
    assert (event.contact_phone, event.contact_name) == (DANA, "Dana Silva")
    assert (event.sender_id, event.sender_name) == (DANA, "Dana Silva")
    assert event.provider_message_id == "wamid.GAtzLXRleHQtQjBGQTI2QTk2QkUwNUM3MkVDN0I="
    assert event.text == "Hi, is order 4271 still arriving on Thursday?"
    assert event.occurred_at == at(9, 15)
    assert (event.origin, event.direction) == ("user", "inbound")


def test_smb_echo_is_sent_by_the_agent() -> None:
    event = one("text_outbound")
    assert isinstance(event, MessageSent)
    assert (event.origin, event.direction) == ("agent", "outbound")
    assert event.chat_key == f"meta:{CH}:{DANA}"
    assert event.contact_phone == DANA
    assert event.sender_id == "15550001000"
    assert event.provider_message_id == ECHO_ID
    assert event.text == "Yes Dana, Thursday after 3 pm."


def test_group_text_uses_group_id() -> None:
    event = one("group_text")
    assert event.chat_id == "Y3VzdG9tZXItZ3JvdXAtMDAwMQ"
    assert event.chat_key == f"meta:{CH}:Y3VzdG9tZXItZ3JvdXAtMDAwMQ"
    assert event.is_group is True
    assert (event.contact_phone, event.contact_name) == (None, None)
    assert (event.sender_id, event.sender_name) == ("15550009012", "Noor Haddad")


@pytest.mark.parametrize(
    ("case", "kind", "file", "media_id", "voice"),
    [
        ("voice", "voice", "voice_note.ogg", "1205774054289243", True),
        ("audio", "audio", "audio_clip.mp3", "1226339154169922", False),
        ("image_with_caption", "image", "receipt_photo.jpg", "1276732204818338", False),
        ("video", "video", "video_clip.mp4", "1254657431266709", False),
        ("document_pdf", "document", "invoice_text.pdf", "1006433527223105", False),
        ("sticker", "sticker", "sticker.webp", "1179756819168671", False),
    ],
)
def test_media(case: str, kind: str, file: str, media_id: str, voice: bool) -> None:
    event = one(case)
    assert event.message_type == kind
    assert event.media.provider_media_id == media_id
    assert event.media.sha256 == SHA256[file]
    assert event.media.voice is voice
    assert event.media.url is None  # resolved later with GET /{media-id}


def test_media_details() -> None:
    assert one("image_with_caption").caption == "Here is the signed receipt"
    document = one("document_pdf")
    assert (document.caption, document.media.filename) == ("Invoice attached", "invoice_2026-0193.pdf")
    assert document.media.mime_type == "application/pdf"
    assert one("sticker").media.animated is False


def test_location_and_contacts() -> None:
    assert one("location").location == Location(latitude=38.7223, longitude=-9.1393, name="Acme Warehouse",
                                                 address="Rua Exemplo 10, Lisboa")  # fmt: skip
    contact = one("contact")
    assert contact.message_type == "contact"
    assert contact.contacts == (ContactCard(name="Sam Courier", phones=("15550007777",)),)


def test_reaction_points_at_the_echo() -> None:
    event = one("reaction")
    assert isinstance(event, ReactionAdded)
    assert event.emoji == "👍"
    assert event.target_provider_message_id == ECHO_ID
    assert event.target_message_id == one("text_outbound").message_id
    assert event.reactor_id == DANA


def test_reaction_without_emoji_is_removed() -> None:
    body = orjson.loads(fixture_bytes("meta", "reaction"))
    del body["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["emoji"]
    [event] = normalise(delivery("meta", body=orjson.dumps(body)))
    assert isinstance(event, ReactionRemoved)
    assert event.target_message_id == message_id("meta", CH, ECHO_ID)


def test_statuses() -> None:
    events = normalise(delivery("meta", "status_update"))
    assert all(isinstance(e, StatusUpdated) for e in events)
    assert [(e.status, e.occurred_at) for e in events] == [("delivered", at(9, 16, 5)), ("read", at(9, 16, 30))]
    assert {e.target_message_id for e in events} == {one("text_outbound").message_id}
    assert {e.chat_key for e in events} == {f"meta:{CH}:{DANA}"}


def test_failed_status_carries_errors() -> None:
    status = {"id": "wamid.X", "status": "failed", "timestamp": "1795166200", "recipient_id": DANA,
              "errors": [{"code": 131047, "title": "Re-engagement message",
                          "error_data": {"details": "More than 24 hours have passed"}}]}  # fmt: skip
    body = orjson.loads(fixture_bytes("meta", "status_update"))
    body["entry"][0]["changes"][0]["value"]["statuses"] = [status]
    [event] = normalise(delivery("meta", body=orjson.dumps(body)))
    assert event.status == "failed"
    assert event.errors == (
        StatusError(code=131047, title="Re-engagement message", details="More than 24 hours have passed"),
    )


def test_batch_spans_changes() -> None:
    events = normalise(delivery("meta", "batch"))
    assert [(e.type, getattr(e, "message_type", None)) for e in events] == [
        ("message_received", "text"),
        ("message_received", "image"),
        ("message_received", "voice"),
        ("status_updated", None),
    ]
    assert [e.chat_id for e in events] == ["15550005678", "15550005678", DANA, DANA]
    assert [getattr(e, "sender_name", None) for e in events[:3]] == ["Ravi Patel", "Ravi Patel", "Dana Silva"]
    assert events[1].media.sha256 == SHA256["receipt_photo.jpg"]
    assert events[2].media.sha256 == SHA256["voice_note.ogg"]
    assert events[3].status == "sent"
    assert events[3].occurred_at == at(9, 16, 1)


def test_unsupported_type_keeps_the_raw_part() -> None:
    error = {"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}
    unknown = {"from": DANA, "id": "wamid.U", "timestamp": "1795166100", "type": "unsupported", "errors": [error]}
    body = orjson.loads(fixture_bytes("meta", "text"))
    body["entry"][0]["changes"][0]["value"]["messages"] = [unknown]
    [event] = normalise(delivery("meta", body=orjson.dumps(body)))
    assert isinstance(event, MessageUnsupported)
    assert (event.provider_type, event.reason) == ("unsupported", "Message type unknown")
    assert event.raw == unknown
    assert event.chat_key == f"meta:{CH}:{DANA}"


def test_button_reply_is_interactive_text() -> None:
    interactive = {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes, Thursday"}}
    reply = {"from": DANA, "id": "wamid.B", "timestamp": "1795166100", "type": "interactive",
             "context": {"from": "15550001000", "id": ECHO_ID}, "interactive": interactive}  # fmt: skip
    body = orjson.loads(fixture_bytes("meta", "text"))
    body["entry"][0]["changes"][0]["value"]["messages"] = [reply]
    [event] = normalise(delivery("meta", body=orjson.dumps(body)))
    assert (event.message_type, event.text) == ("interactive", "Yes, Thursday")
    assert event.reply_to_provider_message_id == ECHO_ID


def test_non_message_fields_are_kept_as_unmodelled_events() -> None:
    change = {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}
    body = {"object": "whatsapp_business_account", "entry": [{"id": "200000000000001", "changes": [change]}]}
    [event] = normalise(delivery("meta", body=orjson.dumps(body)))
    assert isinstance(event, ProviderEventUnsupported)
    assert (event.provider_type, event.channel_id, event.chat_id, event.raw) == (
        "account_update", "200000000000001", None, change
    )


def test_meta_alias_gives_the_same_events() -> None:
    aliased = normalise(delivery("meta_cloud", body=fixture_bytes("meta", "text"), delivery_id="dlv-meta-text"))
    assert aliased == normalise(delivery("meta", "text"))
    assert aliased[0].provider == "meta"
