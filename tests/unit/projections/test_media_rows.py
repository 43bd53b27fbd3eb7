"""The media projection's pure logic: what each event makes of a chat_media row, and that
folding the same events in any order (and any number of times) gives the same row.

``Media`` builds wa.media and enrichment events for one media message by hand; the
integration tests use it too."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from contracts import enrichment, media
from contracts.enrichment import (
    AudioTranscribed, DocumentExtracted, EnrichmentFailed, EnrichmentSkipped, ImageCaptioned, PageText,
)  # fmt: skip
from contracts.envelope import EventDecodeError
from contracts.ids import event_id
from contracts.media import MediaExpired, MediaFailed, MediaSkipped, MediaStored
from projections.items import Item
from projections.media import handoff
from projections.media.logic import MediaProjectionEvent, decode_event, fold
from projections.media.rows import MediaRow
from tests.unit.projections.factory import Chat, at

STAGES = {"voice": "transcribe", "audio": "transcribe", "image": "caption", "document": "extract"}
RESULT_TOPICS = {"transcribe": enrichment.TRANSCRIPTS_TOPIC, "caption": enrichment.CAPTIONS_TOPIC,
                 "extract": enrichment.DOCUMENTS_TOPIC}  # fmt: skip
SHA = "464110b337c34eb4afa3b3399046138902422ee61ba4eacd5778fb47f96563de"


@dataclass
class Media:
    """The media object of message ``pmid`` in ``chat``, and the events about it."""

    chat: Chat = field(default_factory=Chat)
    pmid: str = "m1"
    kind: str = "voice"
    mime: str = "audio/ogg"
    sha256: str = SHA

    @property
    def message_id(self) -> str:
        return self.chat.mid(self.pmid)

    @property
    def media_id(self) -> str:
        return media.media_id(self.message_id)

    def _envelope(self, kind: str, *qualifiers: str) -> dict[str, Any]:
        c = self.chat
        return {
            "event_id": event_id(c.provider, c.channel, self.pmid, kind, *qualifiers), "chat_key": c.key,
            "occurred_at": at(0), "received_at": at(1), "provider": c.provider, "channel_id": c.channel,
            "delivery_id": f"dlv-{self.pmid}", "message_id": self.message_id, "media_id": self.media_id,
            "provider_message_id": self.pmid, "kind": self.kind, "mime_type": self.mime,
        }  # fmt: skip

    def stored(self, t: float, *, path: str | None = None, days: int | None = 90, **kw: Any) -> MediaStored:
        fields = {"direction": "inbound", "size_bytes": 23485, "sha256": self.sha256, "storage": "local",
                  "bucket": "chat-media", "path": path or f"{self.sha256[:2]}/{self.sha256}.ogg",
                  "stored_at": at(t), "expires_at": at(t) + timedelta(days=days) if days is not None else None,
                  "filename": None, "duration_seconds": 12.0, "provider_media_id": f"pm-{self.pmid}"} | kw  # fmt: skip
        return MediaStored(**self._envelope("media_stored", str(t)), **fields)

    def failed(self, t: float, reason: str = "not_found", error: str = "404 from provider", **kw: Any) -> MediaFailed:
        return MediaFailed(**self._envelope("media_failed", str(t)), direction="inbound", reason=reason, error=error,
                           attempts=1, failed_at=at(t), provider_media_id=f"pm-{self.pmid}", **kw)  # fmt: skip

    def media_skipped(self, t: float, detail: str = "META_ACCESS_TOKEN is not set", **kw: Any) -> MediaSkipped:
        return MediaSkipped(**self._envelope("media_skipped", str(t)), direction="inbound", reason="not_configured",
                            detail=detail, skipped_at=at(t), provider_media_id=f"pm-{self.pmid}", **kw)  # fmt: skip

    def expired(self, stored: MediaStored, t: float, *, deleted: bool = True) -> MediaExpired:
        """The retention sweep's event for the copy ``stored`` made, at ``t``."""
        c = self.chat
        return MediaExpired(
            event_id=media.expired_event_id(self.media_id, stored.stored_at), chat_key=c.key, occurred_at=at(t),
            received_at=at(t), provider=c.provider, channel_id=c.channel, delivery_id=media.SWEEP_DELIVERY,
            message_id=self.message_id, media_id=self.media_id, kind=self.kind, size_bytes=stored.size_bytes,
            sha256=stored.sha256, bucket=stored.bucket, path=stored.path, stored_at=stored.stored_at,
            expires_at=stored.expires_at or at(t), object_deleted=deleted,
        )  # fmt: skip

    def _derived(self, kind: str, t: float, model: str | None) -> dict[str, Any]:
        return self._envelope(kind, model or "") | {"sha256": self.sha256, "stage": STAGES[self.kind],
                                                     "model": model, "produced_at": at(t)}  # fmt: skip

    def transcribed(self, text: str, t: float, model: str = "whisper-1") -> AudioTranscribed:
        return AudioTranscribed(**self._derived("audio_transcribed", t, model), text=text, language="en")

    def captioned(self, caption: str, t: float, model: str = "gpt-4o-mini") -> ImageCaptioned:
        return ImageCaptioned(**self._derived("image_captioned", t, model), caption=caption)

    def extracted(self, text: str, t: float, pages: int = 2, model: str | None = None) -> DocumentExtracted:
        return DocumentExtracted(**self._derived("document_extracted", t, model), text=text, page_count=pages,
                                 pages=tuple(PageText(number=n + 1, source="text_layer", chars=len(text))
                                             for n in range(pages)))  # fmt: skip

    def skipped(self, t: float, reason: str = "no_api_key") -> EnrichmentSkipped:
        return EnrichmentSkipped(**self._derived("enrichment_skipped", t, "whisper-1"), reason=reason,
                                 detail="OPENAI_API_KEY is not set")  # fmt: skip

    def enrichment_failed(self, t: float) -> EnrichmentFailed:
        return EnrichmentFailed(**self._derived("enrichment_failed", t, "whisper-1"), error_type="APIStatusError",
                                error="500 from the model", attempts=3)  # fmt: skip

    def topic(self, event: MediaProjectionEvent) -> str:
        return media.TOPIC if isinstance(event, media.EVENT_MODELS) else RESULT_TOPICS[STAGES[self.kind]]


def encode(event: MediaProjectionEvent) -> bytes:
    if isinstance(event, media.EVENT_MODELS):
        return media.encode_event(event)
    return enrichment.encode_event(event)


def items(events: list[MediaProjectionEvent]) -> list[Item[MediaProjectionEvent]]:
    return [Item(e, "wa.media", 0, n, e.chat_key.encode(), encode(e)) for n, e in enumerate(events)]


def folded(events: list[MediaProjectionEvent]) -> dict[str, Any]:
    [row] = fold(items(events)).rows.values()
    return asdict(row)


# --- what each event makes of the row ---------------------------------------------------------


def test_a_stored_media_is_a_stored_row() -> None:
    voice = Media()
    row = folded([voice.stored(10)])
    assert (row["id"], row["message_id"], row["chat_key"], row["kind"]) == (voice.media_id, voice.message_id,
                                                                            voice.chat.key, "voice")  # fmt: skip
    assert (row["status"], row["sha256"], row["bucket"], row["size_bytes"]) == ("stored", SHA, "chat-media", 23485)
    assert (row["stored_at"], row["expires_at"], row["error"]) == (at(10), at(10) + timedelta(days=90), None)


def test_a_result_alone_makes_a_pending_row_with_its_text() -> None:
    voice = Media()
    row = folded([voice.transcribed("hello there", 20)])
    assert (row["status"], row["sha256"], row["mime_type"], row["stored_at"]) == ("pending", SHA, "audio/ogg", None)
    assert (row["transcript"], row["transcript_model"], row["transcript_at"]) == ("hello there", "whisper-1", at(20))
    assert (row["enrichment_status"], row["enrichment_at"]) == ("done", at(20))


def test_a_failure_never_replaces_a_stored_object() -> None:
    voice = Media()
    assert folded([voice.failed(5), voice.failed(8, "rejected", "400")])["error"] == "rejected: 400"
    for events in ([voice.stored(10), voice.failed(20)], [voice.failed(20), voice.stored(10)]):
        row = folded(events)
        assert (row["status"], row["error"], row["failed_at"], row["stored_at"]) == ("stored", None, at(20), at(10))


def test_a_skip_is_a_skipped_row_with_the_setting_and_what_the_webhook_declared() -> None:
    voice = Media()
    row = folded([voice.media_skipped(5, size_bytes=23485, sha256=SHA)])
    assert (row["status"], row["error"], row["failed_at"]) == ("skipped", "not_configured: META_ACCESS_TOKEN is not set",
                                                               at(5))  # fmt: skip
    assert (row["size_bytes"], row["sha256"], row["bucket"], row["path"]) == (23485, SHA, None, None)
    failure = folded([voice.failed(6, size_bytes=23485, sha256=SHA)])
    assert (failure["status"], failure["size_bytes"], failure["sha256"]) == ("failed", 23485, SHA)


def test_the_latest_of_failures_and_skips_wins_and_a_store_beats_both() -> None:
    voice = Media()
    skip, failure = voice.media_skipped(10), voice.failed(20)
    for events in ([skip, failure], [failure, skip]):
        assert (folded(events)["status"], folded(events)["error"]) == ("failed", "not_found: 404 from provider")
    later_skip = voice.media_skipped(30, "EVOLUTION_API_URL is not set")
    assert folded([later_skip, failure])["status"] == folded([failure, later_skip])["status"] == "skipped"
    stored = voice.stored(5, size_bytes=23000)
    for events in ([stored, later_skip], [later_skip, stored]):
        row = folded(events)
        assert (row["status"], row["error"], row["size_bytes"]) == ("stored", None, 23000)
    declared = voice.media_skipped(30, size_bytes=1, sha256="0" * 64)
    assert folded([stored, declared])["sha256"] == folded([declared, stored])["sha256"] == SHA  # verified beats declared


def test_the_newest_store_wins_and_an_equal_one_changes_nothing() -> None:
    voice = Media()
    old, new = voice.stored(10, path="aa/old.ogg"), voice.stored(30, path="bb/new.ogg", days=None)
    assert folded([new, old])["path"] == folded([old, new])["path"] == "bb/new.ogg"
    assert folded([old, new])["expires_at"] is None  # retention off when it was stored again
    row = MediaRow(**folded([old, voice.expired(old, 20)]))
    row.absorb(fold(items([voice.stored(10, path="aa/old.ogg")])).rows[voice.media_id])
    assert row.status == "expired"


def test_an_expiry_ends_its_stored_copy_whatever_the_order_but_not_a_newer_one() -> None:
    voice = Media()
    old, new = voice.stored(10), voice.stored(30, path="bb/new.ogg")
    expiry = voice.expired(old, 25)
    for events in ([old, expiry], [expiry, old], [old, expiry, old, expiry]):
        row = folded(events)
        assert (row["status"], row["stored_at"], row["path"], row["error"]) == ("expired", at(10), old.path, None)
        assert (row["size_bytes"], row["sha256"], row["provider_media_id"]) == (23485, SHA, "pm-m1")
    for events in ([old, expiry, new], [new, expiry, old], [expiry, new]):
        row = folded(events)
        assert (row["status"], row["stored_at"], row["path"]) == ("stored", at(30), "bb/new.ogg")
    assert folded([old, expiry, voice.failed(40)])["status"] == "expired"  # a failed re-download changes nothing


def test_expiries_in_any_order_and_repetition_give_the_same_row() -> None:
    m = Media()
    first, second = m.stored(10), m.stored(30, path="bb/again.ogg")
    events: list[MediaProjectionEvent] = [
        m.failed(5), first, m.expired(first, 20), second, m.expired(second, 40), m.transcribed("late", 35),
    ]  # fmt: skip
    expected = folded(events)
    assert (expected["status"], expected["path"], expected["transcript"]) == ("expired", "bb/again.ogg", "late")
    for order in itertools.permutations(events):
        assert folded(list(order)) == expected
    assert folded(events + events[::-1]) == expected


def test_the_newest_result_wins_whatever_the_model() -> None:
    voice = Media()
    better, older = voice.transcribed("hello, Dana here", 50, model="gpt-4o-transcribe"), voice.transcribed("hello", 20)
    for events in ([older, better], [better, older]):
        row = folded(events)
        assert (row["transcript"], row["transcript_model"]) == ("hello, Dana here", "gpt-4o-transcribe")


def test_skips_and_failures_leave_the_text_and_never_undo_done() -> None:
    voice = Media()
    row = folded([voice.transcribed("hello", 20), voice.skipped(30), voice.enrichment_failed(40)])
    assert (row["transcript"], row["enrichment_status"], row["enrichment_error"]) == ("hello", "done", None)
    row = folded([voice.skipped(30), voice.enrichment_failed(40)])
    assert (row["transcript"], row["enrichment_status"]) == (None, "failed")
    assert row["enrichment_error"] == "APIStatusError: 500 from the model"
    assert folded([voice.skipped(30)])["enrichment_error"] == "no_api_key: OPENAI_API_KEY is not set"


def test_page_count_follows_the_extraction() -> None:
    pdf = Media(kind="document", mime="application/pdf")
    stored = pdf.stored(10, page_count=5)
    assert folded([stored])["page_count"] == 5
    for events in ([stored, pdf.extracted("INVOICE", 20, pages=2)], [pdf.extracted("INVOICE", 20, pages=2), stored]):
        row = folded(events)
        assert (row["page_count"], row["extracted_text"], row["extracted_model"]) == (2, "INVOICE", None)


# --- order and repetition -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["voice", "image", "document"])
def test_any_order_and_any_repetition_give_the_same_row(kind: str) -> None:
    m = Media(kind=kind)
    result = {"voice": lambda text, t: m.transcribed(text, t, model=f"model-{t}"),
              "image": lambda text, t: m.captioned(text, t, model=f"model-{t}"),
              "document": lambda text, t: m.extracted(text, t, pages=int(t) // 10)}[kind]  # fmt: skip
    events: list[MediaProjectionEvent] = [
        m.failed(5, size_bytes=99, sha256=SHA), m.stored(10), m.stored(30, path="bb/again.ogg"), result("first", 20),
        result("second", 40), result("tie-b", 40), m.skipped(45),
    ]  # fmt: skip
    expected = folded(events)
    assert expected["status"] == "stored" and expected["path"] == "bb/again.ogg" and expected["error"] is None
    assert "tie-b" in (expected["transcript"], expected["caption"], expected["extracted_text"])
    for order in itertools.permutations(events):
        assert folded(list(order)) == expected
    assert folded(events + events[::-1]) == expected


def test_failures_and_skips_in_any_order_and_repetition_give_the_same_row() -> None:
    m = Media()
    declared = {"size_bytes": 23485, "sha256": SHA}
    events: list[MediaProjectionEvent] = [
        m.failed(5, **declared), m.media_skipped(7, **declared), m.failed(9, "rejected", "400", **declared),
        m.media_skipped(9, "EVOLUTION_API_URL is not set", **declared), m.transcribed("late", 20),
    ]  # fmt: skip
    expected = folded(events)
    assert (expected["status"], expected["error"]) == ("failed", "rejected: 400")  # a tie goes to the greater error
    assert (expected["size_bytes"], expected["sha256"], expected["transcript"]) == (23485, SHA, "late")
    for order in itertools.permutations(events):
        assert folded(list(order)) == expected
    assert folded(events + events[::-1]) == expected


# --- decoding and locks -------------------------------------------------------------------------


def test_events_of_the_four_topics_decode_and_garbage_does_not() -> None:
    voice, pdf = Media(), Media(kind="document")
    for event in (voice.stored(1), voice.failed(1), voice.media_skipped(1), voice.expired(voice.stored(1), 2),
                  voice.transcribed("x", 1), Media(kind="image").captioned("y", 1), pdf.extracted("z", 1),
                  voice.skipped(1), voice.enrichment_failed(1)):  # fmt: skip
        assert decode_event(encode(event)) == event
    for garbage in (b"not json", b"[]", b'{"type": "message_received"}', b'{"type": "media_stored"}'):
        with pytest.raises(EventDecodeError):
            decode_event(garbage)


def test_lock_buckets_are_stable_sorted_and_bounded() -> None:
    ids = [Chat().mid(f"m{n}") for n in range(5000)]
    got = handoff.buckets(ids)
    assert got == sorted(got) and len(got) == handoff.BUCKETS and handoff.buckets(reversed(ids)) == got
    assert handoff.buckets([ids[0]]) == handoff.buckets([ids[0], ids[0]])
