"""Evolution API fixtures -> events, with concrete values."""

from __future__ import annotations

import orjson
import pytest

from contracts.ids import message_id
from contracts.messages import (
    ContactCard,
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
from tests.unit.normalize.webhooks import SHA256, at, delivery, fixture_bytes

CH = "acme-main"  # the instance name
DANA = "15550001234"
OUTBOUND_ID = "3EB0A1B2C3D4E5F60719"


def one(case: str):  # type: ignore[no-untyped-def]
    events = normalise(delivery("evolution", case))
    assert len(events) == 1, events
    return events[0]


def with_message(message: dict, *, case: str = "text", **data: object) -> bytes:
    body = orjson.loads(fixture_bytes("evolution", case))
    body["data"]["message"] = message
    body["data"].update(data)
    return orjson.dumps(body)


def test_text() -> None:
    event = one("text")
    assert isinstance(event, MessageReceived)
    assert (event.provider, event.channel_id) == ("evolution", CH)
    assert event.chat_key == f"evolution:{CH}:{DANA}"
    assert (event.contact_phone, event.contact_name) == (DANA, "Dana Silva")
    assert (event.sender_id, event.sender_name) == (DANA, "Dana Silva")
    assert event.provider_message_id == "3EB0A1B2C3D4E5F60718"
    assert event.text == "Hi, is order 4271 still arriving on Thursday?"
    assert event.occurred_at == at(9, 15)


def test_text_outbound() -> None:
    event = one("text_outbound")
    assert isinstance(event, MessageSent)
    assert (event.origin, event.direction) == ("agent", "outbound")
    assert event.chat_key == f"evolution:{CH}:{DANA}"
    assert (event.contact_phone, event.contact_name) == (DANA, None)
    assert (event.sender_id, event.sender_name) == ("15550001000", "Acme Support")
    assert event.text == "Yes Dana, Thursday after 3 pm."


def test_group_text() -> None:
    event = one("group_text")
    assert event.chat_key == f"evolution:{CH}:120363000000000001@g.us"
    assert event.is_group is True
    assert (event.contact_phone, event.contact_name) == (None, None)
    assert (event.sender_id, event.sender_name) == ("15550009012", "Noor Haddad")


@pytest.mark.parametrize(
    ("case", "kind", "file", "size", "voice", "seconds"),
    [
        ("voice", "voice", "voice_note.ogg", 23485, True, 12),
        ("audio", "audio", "audio_clip.mp3", 49546, False, 12),
        ("image_with_caption", "image", "receipt_photo.jpg", 33954, False, None),
        ("video", "video", "video_clip.mp4", 29753, False, 2),
        ("document_pdf", "document", "invoice_text.pdf", 1636, False, None),
        ("sticker", "sticker", "sticker.webp", 6612, False, None),
    ],
)
def test_media(case: str, kind: str, file: str, size: int, voice: bool, seconds: int | None) -> None:
    event = one(case)
    assert event.message_type == kind
    media = event.media
    assert media.sha256 == SHA256[file]
    assert media.size_bytes == size
    assert media.voice is voice
    assert media.duration_seconds == seconds
    assert media.url.startswith("https://mmg.whatsapp.test/")
    assert media.inline_base64 is False
    assert event.raw["message"]  # mediaKey etc. stay available for decryption


def test_media_details() -> None:
    image = one("image_with_caption")
    assert (image.caption, image.media.width, image.media.height) == ("Here is the signed receipt", 800, 600)
    document = one("document_pdf")
    assert (document.media.filename, document.media.page_count) == ("invoice_2026-0193.pdf", 2)
    assert one("sticker").media.animated is False


def test_location_and_contact() -> None:
    assert one("location").location == Location(latitude=38.7223, longitude=-9.1393, name="Acme Warehouse",
                                                address="Rua Exemplo 10, Lisboa")  # fmt: skip
    assert one("contact").contacts == (ContactCard(name="Sam Courier", phones=("15550007777",)),)


def test_reaction() -> None:
    event = one("reaction")
    assert isinstance(event, ReactionAdded)
    assert event.emoji == "👍"
    assert event.target_provider_message_id == OUTBOUND_ID
    assert event.target_message_id == one("text_outbound").message_id
    assert (event.reactor_id, event.direction) == (DANA, "inbound")


def test_reaction_removed() -> None:
    removed = {"reactionMessage": {"key": {"remoteJid": f"{DANA}@s.whatsapp.net", "fromMe": True, "id": OUTBOUND_ID},
                                   "text": ""}}  # fmt: skip
    [event] = normalise(delivery("evolution", body=with_message(removed, case="reaction")))
    assert isinstance(event, ReactionRemoved)
    assert event.target_message_id == message_id("evolution", CH, OUTBOUND_ID)


def test_status_update_uses_the_envelope_time() -> None:
    event = one("status_update")
    assert isinstance(event, StatusUpdated)
    assert event.status == "read"
    assert event.target_message_id == one("text_outbound").message_id
    assert event.chat_key == f"evolution:{CH}:{DANA}"
    assert event.occurred_at == at(9, 16, 30)  # date_time: messages.update has no timestamp of its own


def test_v1_status_update_list() -> None:
    body = orjson.loads(fixture_bytes("evolution", "status_update"))
    body["data"] = [{"key": {"remoteJid": f"{DANA}@s.whatsapp.net", "fromMe": True, "id": OUTBOUND_ID},
                     "update": {"status": 3}}]  # fmt: skip
    [event] = normalise(delivery("evolution", body=orjson.dumps(body)))
    assert (event.status, event.target_provider_message_id) == ("delivered", OUTBOUND_ID)


def test_revoke_is_a_deletion() -> None:
    revoke = {"protocolMessage": {"key": {"remoteJid": f"{DANA}@s.whatsapp.net", "fromMe": False,
                                          "id": "3EB0A1B2C3D4E5F60718"}, "type": "REVOKE"}}  # fmt: skip
    [event] = normalise(delivery("evolution", body=with_message(revoke, messageType="protocolMessage")))
    assert isinstance(event, MessageDeleted)
    assert event.target_message_id == one("text").message_id
    assert event.direction == "inbound"


def test_message_edit() -> None:
    edit = {"editedMessage": {"message": {"protocolMessage": {
        "key": {"remoteJid": f"{DANA}@s.whatsapp.net", "fromMe": False, "id": "3EB0A1B2C3D4E5F60718"},
        "type": "MESSAGE_EDIT", "editedMessage": {"conversation": "Is order 4271 arriving on Friday?"}}}}}  # fmt: skip
    [event] = normalise(delivery("evolution", body=with_message(edit, messageType="editedMessage")))
    assert isinstance(event, MessageEdited)
    assert event.new_text == "Is order 4271 arriving on Friday?"
    assert event.target_message_id == one("text").message_id


@pytest.mark.parametrize("wrapper", ["ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2"])
def test_wrappers_are_unwrapped(wrapper: str) -> None:
    image = orjson.loads(fixture_bytes("evolution", "image_with_caption"))["data"]["message"]
    body = with_message({wrapper: {"message": image}}, case="image_with_caption", messageType=wrapper)
    [event] = normalise(delivery("evolution", body=body))
    assert event.message_type == "image"
    assert event.media.sha256 == SHA256["receipt_photo.jpg"]


def test_inline_base64_is_flagged_and_left_in_wa_raw() -> None:
    message = orjson.loads(fixture_bytes("evolution", "voice"))["data"]["message"]
    body = with_message({**message, "base64": "T2dnUwACAAAAAAAA"}, case="voice")
    [event] = normalise(delivery("evolution", body=body))
    assert event.media.inline_base64 is True
    assert "base64" not in event.raw["message"]
    assert b"T2dnUwACAAAAAAAA" not in orjson.dumps(event.model_dump(mode="json"))


def test_reply_and_forward_from_context_info() -> None:
    text = {"extendedTextMessage": {"text": "Thanks!", "contextInfo": {"stanzaId": OUTBOUND_ID, "isForwarded": True}}}
    [event] = normalise(delivery("evolution", body=with_message(text, messageType="extendedTextMessage")))
    assert (event.text, event.reply_to_provider_message_id, event.forwarded) == ("Thanks!", OUTBOUND_ID, True)


def test_lid_chat_uses_the_phone_form_when_given() -> None:
    body = orjson.loads(fixture_bytes("evolution", "text"))
    body["data"]["key"] |= {"remoteJid": "203040506070809@lid", "remoteJidAlt": f"{DANA}@s.whatsapp.net"}
    [event] = normalise(delivery("evolution", body=orjson.dumps(body)))
    assert event.chat_key == f"evolution:{CH}:{DANA}"
    body["data"]["key"].pop("remoteJidAlt")
    [event] = normalise(delivery("evolution", body=orjson.dumps(body)))
    assert (event.chat_id, event.contact_phone) == ("203040506070809@lid", None)


def test_poll_is_unsupported() -> None:
    poll = {"pollCreationMessage": {"name": "Lunch?", "options": [{"optionName": "yes"}]}}
    [event] = normalise(delivery("evolution", body=with_message(poll, messageType="pollCreationMessage")))
    assert isinstance(event, MessageUnsupported)
    assert event.provider_type == "pollCreationMessage"
    assert event.raw["message"] == poll


def test_other_events_are_kept_as_unmodelled_events() -> None:
    body = {"event": "connection.update", "instance": CH, "data": {"state": "open"}}
    [event] = normalise(delivery("evolution", body=orjson.dumps(body)))
    assert isinstance(event, ProviderEventUnsupported)
    assert (event.provider_type, event.chat_id, event.chat_key, event.raw) == (
        "connection.update", None, f"evolution:{CH}:", {"state": "open"}
    )
