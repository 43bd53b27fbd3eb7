"""Whapi.Cloud fixtures -> events, with concrete values."""

from __future__ import annotations

import orjson
import pytest

from contracts.ids import message_id
from contracts.messages import (
    ContactCard,
    LinkPreview,
    Location,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    MessageSent,
    MessageUnsupported,
    ProviderEventUnsupported,
    ReactionAdded,
    ReactionRemoved,
    StatusUpdated,
)
from streams.normalize.logic import normalise
from tests.unit.normalize.webhooks import RECEIVED_AT, SHA256, at, delivery, fixture_bytes

CH = "TESTCH-A1B2C"
DANA = "15550001234"
OUTBOUND_ID = "Xq7.tXa1Bc2De3Fg4Hi5J-gBgTk0aB"


def one(case: str):  # type: ignore[no-untyped-def]
    events = normalise(delivery("whapi", case))
    assert len(events) == 1, events
    return events[0]


def test_text() -> None:
    event = one("text")
    assert isinstance(event, MessageReceived)
    assert event.provider == "whapi"
    assert event.channel_id == CH
    assert event.chat_key == f"whapi:{CH}:{DANA}"
    assert event.chat_id == DANA
    assert event.contact_phone == DANA
    assert event.contact_name == "Dana Silva"
    assert event.is_group is False
    assert event.provider_message_id == "Wq7.tXa1Bc2De3Fg4Hi5J-gBgTk0aA"
    assert event.message_id == message_id("whapi", CH, "Wq7.tXa1Bc2De3Fg4Hi5J-gBgTk0aA")
    assert (event.sender_id, event.sender_name) == (DANA, "Dana Silva")
    assert (event.origin, event.direction, event.message_type) == ("user", "inbound", "text")
    assert event.text == "Hi, is order 4271 still arriving on Thursday?"
    assert event.occurred_at == at(9, 15)
    assert event.received_at == RECEIVED_AT
    assert event.delivery_id == "dlv-whapi-text"
    assert event.raw == orjson.loads(fixture_bytes("whapi", "text"))["messages"][0]


def test_text_outbound_is_sent_by_the_agent() -> None:
    event = one("text_outbound")
    assert isinstance(event, MessageSent)
    assert (event.origin, event.direction) == ("agent", "outbound")
    assert event.chat_key == f"whapi:{CH}:{DANA}"
    assert event.contact_phone == DANA
    assert event.contact_name is None  # from_name is the business, not the contact
    assert (event.sender_id, event.sender_name) == ("15550001000", "Acme Support")
    assert event.text == "Yes Dana, Thursday after 3 pm."
    assert event.occurred_at == at(9, 16)


def test_group_text_keys_by_group_and_keeps_the_sender_apart() -> None:
    event = one("group_text")
    assert isinstance(event, MessageReceived)
    assert event.chat_id == "120363000000000001@g.us"
    assert event.chat_key == f"whapi:{CH}:120363000000000001@g.us"
    assert event.is_group is True
    assert event.group_name == "Acme Deliveries Team"
    assert (event.contact_phone, event.contact_name) == (None, None)
    assert (event.sender_id, event.sender_name) == ("15550009012", "Noor Haddad")


@pytest.mark.parametrize(
    ("case", "kind", "file", "media_id", "size", "voice", "seconds", "mime"),
    [
        ("voice", "voice", "voice_note.ogg", "oga-7f3c1a2b9d4e5f60718293a4", 23485, True, 12, "audio/ogg; codecs=opus"),
        ("audio", "audio", "audio_clip.mp3", "mp3-0a1b2c3d4e5f60718293a4b5", 49546, False, 12, "audio/mpeg"),
        ("image_with_caption", "image", "receipt_photo.jpg", "jpeg-1b2c3d4e5f60718293a4b5c6", 33954, False, None,
         "image/jpeg"),
        ("video", "video", "video_clip.mp4", "mp4-2c3d4e5f60718293a4b5c6d7", 29753, False, 2, "video/mp4"),
        ("document_pdf", "document", "invoice_text.pdf", "pdf-3d4e5f60718293a4b5c6d7e8", 1636, False, None,
         "application/pdf"),
        ("sticker", "sticker", "sticker.webp", "webp-4e5f60718293a4b5c6d7e8f9", 6612, False, None, "image/webp"),
    ],
)
def test_media(case: str, kind: str, file: str, media_id: str, size: int, voice: bool, seconds: int | None,
               mime: str) -> None:  # fmt: skip
    event = one(case)
    assert isinstance(event, MessageReceived)
    assert event.message_type == kind
    media = event.media
    assert media is not None
    assert media.provider_media_id == media_id
    assert media.sha256 == SHA256[file]
    assert media.size_bytes == size
    assert media.voice is voice
    assert media.duration_seconds == seconds
    assert media.mime_type == mime
    assert media.url is not None and media.url.startswith("https://media.whapi.test/files/")
    assert media.inline_base64 is False


def test_media_details() -> None:
    image = one("image_with_caption")
    assert image.caption == "Here is the signed receipt"
    assert (image.media.width, image.media.height) == (800, 600)
    document = one("document_pdf")
    assert document.caption == "Invoice attached"
    assert document.media.filename == "invoice_2026-0193.pdf"
    assert document.media.page_count == 2
    assert one("sticker").media.animated is False


def test_location() -> None:
    event = one("location")
    assert event.message_type == "location"
    assert event.location == Location(latitude=38.7223, longitude=-9.1393, name="Acme Warehouse",
                                      address="Rua Exemplo 10, Lisboa")  # fmt: skip


def test_contact_from_vcard() -> None:
    event = one("contact")
    assert event.message_type == "contact"
    assert event.contacts == (ContactCard(name="Sam Courier", phones=("15550007777",)),)


def test_link_preview() -> None:
    event = one("link_preview")
    assert event.message_type == "link_preview"
    assert event.text == "Tracking page: https://track.example.test/4271"
    assert event.link == LinkPreview(url="https://track.example.test/4271", title="Order 4271 tracking",
                                     description="Out for delivery")  # fmt: skip


def test_reaction_points_at_the_outbound_message() -> None:
    event = one("reaction")
    assert isinstance(event, ReactionAdded)
    assert event.emoji == "👍"
    assert event.target_provider_message_id == OUTBOUND_ID
    assert event.target_message_id == one("text_outbound").message_id
    assert (event.reactor_id, event.reactor_name, event.direction) == (DANA, "Dana Silva", "inbound")
    assert event.provider_message_id == "Rx1.aB2cD3eF4gH5iJ6kL-gBgTk0aK"


def test_status_update_timestamps_are_strings() -> None:
    events = normalise(delivery("whapi", "status_update"))
    assert [type(e) for e in events] == [StatusUpdated, StatusUpdated]
    assert [e.status for e in events] == ["delivered", "read"]
    assert [e.occurred_at for e in events] == [at(9, 16, 5), at(9, 16, 30)]
    outbound_id = one("text_outbound").message_id
    for event in events:
        assert event.chat_key == f"whapi:{CH}:{DANA}"
        assert event.target_message_id == outbound_id
        assert event.direction == "outbound"
    assert events[0].event_id != events[1].event_id


def test_batch() -> None:
    events = normalise(delivery("whapi", "batch"))
    assert [e.message_type for e in events] == ["text", "image", "voice"]
    assert {e.chat_key for e in events} == {f"whapi:{CH}:15550005678"}
    assert {e.sender_name for e in events} == {"Ravi Patel"}
    assert events[2].media.voice is True
    assert len({e.event_id for e in events}) == 3


def _action(action: dict, *, from_me: bool = False) -> bytes:
    return orjson.dumps({
        "messages": [{
            "id": "Ac1.action", "from_me": from_me, "type": "action", "chat_id": f"{DANA}@s.whatsapp.net",
            "timestamp": 1795167000, "action": action, "from": DANA, "from_name": "Dana Silva",
        }],
        "event": {"type": "messages", "event": "post"},
        "channel_id": CH,
    })  # fmt: skip


def test_reaction_with_empty_emoji_is_removed() -> None:
    [event] = normalise(delivery("whapi", body=_action({"target": OUTBOUND_ID, "type": "reaction", "emoji": ""})))
    assert isinstance(event, ReactionRemoved)
    assert event.target_message_id == message_id("whapi", CH, OUTBOUND_ID)


def test_edit_action() -> None:
    body = _action({"target": "Wq7.x", "type": "edit", "edited_type": "text", "edited_content": {"body": "Friday?"}})
    [event] = normalise(delivery("whapi", body=body))
    assert isinstance(event, MessageEdited)
    assert event.new_text == "Friday?"
    assert event.target_provider_message_id == "Wq7.x"
    assert event.target_message_id == message_id("whapi", CH, "Wq7.x")
    assert event.occurred_at == at(9, 30)


def test_delete_action() -> None:
    [event] = normalise(delivery("whapi", body=_action({"target": "Wq7.x", "type": "delete"}, from_me=True)))
    assert isinstance(event, MessageDeleted)
    assert event.target_message_id == message_id("whapi", CH, "Wq7.x")
    assert event.direction == "outbound"


def test_unknown_action_and_type_are_kept_as_unsupported() -> None:
    [vote] = normalise(delivery("whapi", body=_action({"target": "Wq7.x", "type": "vote", "votes": ["a"]})))
    assert isinstance(vote, MessageUnsupported)
    assert vote.provider_type == "action:vote"
    body = orjson.loads(fixture_bytes("whapi", "text"))
    body["messages"][0] |= {"type": "poll", "poll": {"title": "Lunch?", "options": ["yes", "no"]}}
    [poll] = normalise(delivery("whapi", body=orjson.dumps(body)))
    assert isinstance(poll, MessageUnsupported)
    assert (poll.provider_type, poll.message_type) == ("poll", "unsupported")
    assert poll.raw["poll"] == {"title": "Lunch?", "options": ["yes", "no"]}
    assert poll.message_id == message_id("whapi", CH, "Wq7.tXa1Bc2De3Fg4Hi5J-gBgTk0aA")


def test_other_webhook_kinds_are_kept_as_unmodelled_events() -> None:
    body = {"chats": [{"id": f"{DANA}@s.whatsapp.net"}], "event": {"type": "chats", "event": "post"}, "channel_id": CH}
    [event] = normalise(delivery("whapi", body=orjson.dumps(body)))
    assert isinstance(event, ProviderEventUnsupported)
    assert (event.provider_type, event.chat_id, event.chat_key) == ("chats.post", DANA, f"whapi:{CH}:{DANA}")
    assert event.raw == body["chats"][0]


def test_channel_falls_back_to_the_delivery() -> None:
    body = orjson.loads(fixture_bytes("whapi", "text"))
    del body["channel_id"]
    [event] = normalise(delivery("whapi", body=orjson.dumps(body), channel="FROM-INGEST"))
    assert event.chat_key == f"whapi:FROM-INGEST:{DANA}"
