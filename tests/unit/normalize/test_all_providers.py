"""Properties every provider's fixtures share: determinism, same facts across providers."""

from __future__ import annotations

from datetime import UTC

import pytest

from contracts.messages import MessageReceived, MessageSent
from streams.normalize.logic import normalise
from tests.unit.normalize.webhooks import SHA256, all_cases, at, delivery

PROVIDERS = ("whapi", "meta", "evolution")


@pytest.mark.parametrize(("provider", "case"), all_cases())
def test_same_delivery_twice_gives_identical_events(provider: str, case: str) -> None:
    first = normalise(delivery(provider, case))
    assert first, "every fixture yields events"
    assert normalise(delivery(provider, case)) == first


@pytest.mark.parametrize(("provider", "case"), all_cases())
def test_a_redelivery_keeps_every_id(provider: str, case: str) -> None:
    first = normalise(delivery(provider, case, delivery_id="first"))
    again = normalise(delivery(provider, case, delivery_id="retry-3"))
    assert [e.event_id for e in again] == [e.event_id for e in first]
    assert [getattr(e, "message_id", None) for e in again] == [getattr(e, "message_id", None) for e in first]
    assert len({e.event_id for e in first}) == len(first)


@pytest.mark.parametrize(("provider", "case"), all_cases())
def test_events_are_utc_and_keyed_by_chat(provider: str, case: str) -> None:
    for event in normalise(delivery(provider, case)):
        assert event.occurred_at.tzinfo == UTC
        assert event.chat_key == f"{event.provider}:{event.channel_id}:{event.chat_id}"
        assert event.provider == provider


CASES = [
    # case, message type, file, occurred_at
    ("text", "text", None, at(9, 15)),
    ("voice", "voice", "voice_note.ogg", at(9, 17)),
    ("audio", "audio", "audio_clip.mp3", at(9, 18)),
    ("image_with_caption", "image", "receipt_photo.jpg", at(9, 19)),
    ("video", "video", "video_clip.mp4", at(9, 20)),
    ("document_pdf", "document", "invoice_text.pdf", at(9, 21)),
    ("sticker", "sticker", "sticker.webp", at(9, 22)),
    ("location", "location", None, at(9, 23)),
    ("contact", "contact", None, at(9, 24)),
    ("group_text", "text", None, at(9, 28, 20)),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("case", "kind", "file", "when"), CASES)
def test_providers_agree_on_the_facts(provider: str, case: str, kind: str, file: str | None, when) -> None:  # type: ignore[no-untyped-def]
    [event] = normalise(delivery(provider, case))
    assert isinstance(event, MessageReceived)
    assert event.message_type == kind
    assert event.occurred_at == when
    assert event.is_group is (case == "group_text")
    if file:
        assert event.media.sha256 == SHA256[file]
        assert event.media.voice is (case == "voice")
    else:
        assert event.media is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_outbound_statuses_and_reactions_meet_on_one_message_id(provider: str) -> None:
    [sent] = normalise(delivery(provider, "text_outbound"))
    assert isinstance(sent, MessageSent)
    [reaction] = normalise(delivery(provider, "reaction"))
    statuses = normalise(delivery(provider, "status_update"))
    assert reaction.target_message_id == sent.message_id
    assert {s.target_message_id for s in statuses} == {sent.message_id}
    assert {s.chat_key for s in [reaction, *statuses]} == {sent.chat_key}
