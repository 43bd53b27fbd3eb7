"""Retention by policy, its pure halves: the sweep's cut-offs and events, what the ledger makes
of the cut-offs (hide an expired message's events, strip a cleared message's derived text), and
that a projection of the stripped results is exactly the row the projector's clearing leaves."""

from __future__ import annotations

import base64
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from contracts import retention
from contracts.envelope import EventDecodeError
from contracts.erasure import ErasureRequested, Ledger, chat_hash, subject_hash
from contracts.topics import by_name
from projections.erasures.main import decode as privacy_decode
from projections.items import Item, screened
from projections.media.logic import fold
from projections.retention.logic import doomed_objects, doomed_results
from streams.media.retention import ChatPast, cutoff, events, goes_at
from tests.unit.embed.test_projection_logic import replaced
from tests.unit.projections.factory import Chat, at
from tests.unit.projections.test_media_rows import Media, items

NOW = datetime(2027, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
CHAT = Chat()


def _ledger(*, expired: datetime | None = None, cleared: datetime | None = None) -> Ledger:
    return Ledger.of((), [(chat_hash(CHAT.key), expired, cleared)])


# --- the sweep --------------------------------------------------------------------------------------


def test_a_policy_of_none_or_zero_days_keeps_forever_and_a_cutoff_is_to_the_second() -> None:
    assert cutoff(None, NOW) is None and cutoff(0, NOW) is None
    assert cutoff(30, NOW) == datetime(2027, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_the_sweep_writes_one_event_per_chat_with_something_past_the_cutoff_in_chat_order() -> None:
    before = cutoff(30, NOW)
    assert before is not None
    chats = [ChatPast("whapi:CH:2", 3, at(0)), ChatPast("whapi:CH:1", 1, at(5)), ChatPast("whapi:CH:3", 0, at(0))]
    out = events("texts", chats, before=before, now=NOW, days=30)
    assert [(e.type, e.chat_key, e.messages) for e in out] == [("texts_cleared", "whapi:CH:1", 1),
                                                               ("texts_cleared", "whapi:CH:2", 3)]  # fmt: skip
    again = events("texts", chats, before=before, now=NOW, days=30)
    assert [e.event_id for e in again] == [e.event_id for e in out]  # a repeated sweep: the same events
    expired = events("messages", chats, before=before, now=NOW, days=30)
    assert {e.event_id for e in expired}.isdisjoint(e.event_id for e in out)


def test_the_oldest_goes_days_after_it_was_received() -> None:
    assert goes_at(at(0), 30) == at(0) + timedelta(days=30)
    assert goes_at(None, 30) is None and goes_at(at(0), None) is None


def test_retention_events_round_trip_keyed_by_chat_on_a_declared_topic() -> None:
    event = retention.new_event("messages", CHAT.key, before=at(0), swept_at=NOW, days=365, messages=2)
    assert retention.decode(event.encode()) == event and event.key == CHAT.key.encode()
    assert privacy_decode(event.encode()) == event  # the erasures projector reads both topics
    erasure = ErasureRequested(erasure_id="e1", subject_kind="chat", subject_hash=subject_hash("chat", CHAT.key),
                               requested_at=at(0), requested_by="cli")  # fmt: skip
    assert privacy_decode(erasure.encode()) == erasure
    spec = by_name(retention.TOPIC)
    assert spec.key == "chat key" and not spec.compacted and spec.retention_ms == -1
    with pytest.raises(EventDecodeError):
        privacy_decode(b"[1]")
    with pytest.raises(EventDecodeError):
        retention.decode(orjson.dumps({"type": "messages_expired", "schema_version": 1}))


# --- the ledger: what readers of the log make of a cut-off -----------------------------------------


def test_an_expiry_hides_what_was_received_before_it_and_nothing_after() -> None:
    ledger = _ledger(expired=at(30))
    old, new = CHAT.received("m1", t=0), CHAT.received("m2", t=40)  # received at(1), at(41)
    assert ledger.active and ledger.hides_event(old) and not ledger.hides_event(new)
    assert ledger.hides_record(CHAT.key.encode(), old.model_dump_json().encode())
    assert not ledger.hides_record(CHAT.key.encode(), new.model_dump_json().encode())
    assert not ledger.hides(CHAT.key, None)  # no time: a cut-off cannot date it, only an erasure hides it
    assert not ledger.hides_event(Chat(chat_id="15550009999").received("m1", t=0))  # another chat
    assert not Ledger().active


def test_an_erasure_and_an_expiry_of_one_chat_hide_up_to_the_later() -> None:
    erased = Ledger.of([(subject_hash("chat", CHAT.key), [], at(10))], [(chat_hash(CHAT.key), at(30), None)])
    assert erased.hides(CHAT.key, at(20)) and not erased.hides(CHAT.key, at(31))
    assert erased.hides(CHAT.key, None)  # erased: hidden when undated, as before


def test_a_media_expiry_is_dated_by_its_message_or_else_by_the_copy_it_ends() -> None:
    m = Media()
    stored = m.stored(100)  # stored at(100), its message received at(1)
    sweep_dated = m.expired(stored, 10_000)  # an older sweep's event: received_at = the sweep's time
    assert _ledger(expired=at(200)).hides_event(sweep_dated)
    assert not _ledger(expired=at(50)).hides_event(sweep_dated)
    message_dated = sweep_dated.model_copy(update={"received_at": at(1)})
    assert _ledger(expired=at(50)).hides_event(message_dated)


def test_a_cleared_message_s_results_are_stripped_and_its_derived_chunks_left_out() -> None:
    ledger = _ledger(cleared=at(30))
    voice, image, pdf = Media(), Media(pmid="m2", kind="image", mime="image/jpeg"), Media(pmid="m3", kind="document")
    transcribed = ledger.screen(voice.transcribed("secret words", 5))
    assert transcribed is not None and transcribed.text is None and transcribed.model == "whisper-1"
    captioned = ledger.screen(image.captioned("a cat", 5))
    assert captioned is not None and captioned.caption is None
    extracted = ledger.screen(pdf.extracted("page text", 5))
    assert extracted is not None and extracted.text is None and extracted.pages == () and extracted.page_count == 2
    stored = voice.stored(3)
    assert ledger.screen(stored) is stored  # not derived text: as is
    chunks = replaced("transcript", 2).model_copy(update={"chat_key": CHAT.key, "received_at": at(1)})
    own_text = chunks.model_copy(update={"source": "text"})
    assert ledger.screen(chunks) is None and ledger.screen(own_text) is own_text
    later = voice.transcribed("kept", 5).model_copy(update={"received_at": at(31)})
    assert ledger.screen(later) is later  # a message received after the cut-off keeps its text
    assert _ledger(expired=at(30)).screen(voice.transcribed("x", 5)) is None  # expired: hidden outright


def test_screened_items_keep_their_coordinates_and_drop_the_hidden() -> None:
    voice = Media()
    batch = items([voice.stored(3), voice.transcribed("secret words", 5)])
    ledger = _ledger(cleared=at(30))
    out = screened(batch, ledger)
    assert [i.offset for i in out] == [0, 1] and out[0] is batch[0]
    assert out[1].event.text is None and out[1].value == batch[1].value
    assert screened(batch, _ledger(expired=at(30))) == []


@pytest.mark.parametrize("kind", ["voice", "image", "document"])
def test_folding_stripped_results_gives_the_row_the_projector_s_clearing_leaves(kind: str) -> None:
    """Live: the result's text was projected, then TextsCleared set the text columns to null.
    Rebuild (or a replay after the clearing): the same results arrive stripped. Same row."""
    m = Media(kind=kind, mime={"voice": "audio/ogg", "image": "image/jpeg", "document": "application/pdf"}[kind])
    results = {"voice": [m.transcribed("one", 5), m.transcribed("two", 9, model="m2")],
               "image": [m.captioned("a cat", 5), m.captioned("a dog", 9)],
               "document": [m.extracted("p1", 5), m.extracted("p2", 9, pages=3)]}[kind]  # fmt: skip
    events = [m.stored(3), *results]
    [live] = fold(items(events)).rows.values()
    live = replace(live, transcript=None, caption=None, extracted_text=None)  # projections.retention.sql.CLEAR_MEDIA
    ledger = _ledger(cleared=at(30))
    [rebuilt] = fold(screened(items(events), ledger)).rows.values()
    assert asdict(rebuilt) == asdict(live)
    # and a result replayed after the clearing changes nothing
    [again] = fold(screened(items([*events, *results]), ledger)).rows.values()
    assert asdict(again) == asdict(live)


# --- what the projector removes from storage -----------------------------------------------------


def test_an_object_goes_only_when_no_kept_stored_row_uses_it() -> None:
    theirs = [("a/1", "h1", "stored"), ("b/2", "h2", "stored"), ("c/3", "h3", "expired"), (None, "h4", "failed")]
    others = [("b/2", "h2", "stored"), ("c/3", "h3", "expired"), ("d/4", "h1", "expired")]
    assert doomed_objects(theirs, others) == ["a/1", "c/3"]  # c/3's other row is expired: it holds no object
    assert doomed_results(theirs, others) == ["h4"]  # h1..h3 still back a kept row's file


def test_items_are_frozen_dataclasses_replace_keeps_everything_but_the_event() -> None:
    item = Item("e", "t", 1, 2, b"k", b"v", (("h", b"x"),))
    assert replace(item, event="f") == Item("f", "t", 1, 2, b"k", b"v", (("h", b"x"),))


def test_a_projector_reads_the_cut_offs_of_its_batch_s_chats_and_dead_letters_keys() -> None:
    from contracts.deadletter import DeadLettered
    from runtime.erasure_ledger import chats_of

    letter = DeadLettered.model_construct(key_b64=base64.b64encode(b"whapi:CH:15550001111").decode())
    assert chats_of([CHAT.received("m1"), letter, object()]) == {CHAT.key, "whapi:CH:15550001111"}


def test_the_sweep_writes_to_wa_retention_keyed_by_chat_with_its_type() -> None:
    from streams.media.retention_sweep import output

    event = retention.new_event("texts", CHAT.key, before=at(0), swept_at=NOW, days=30, messages=1)
    out = output(event)
    assert (out.topic, out.key, out.headers) == ("wa.retention", CHAT.key.encode(), (("mm-type", b"texts_cleared"),))
    assert retention.decode(out.value) == event


def test_expired_message_events_still_tell_the_messages_projection_about_their_chat() -> None:
    """The sweep removes messages, not chats: a rebuild keeps what expired events said about the
    chat (activity, names, consent), so its chats rows are the live ones."""
    from projections.messages.logic import fold as fold_messages
    from tests.unit.projections.factory import items as message_items

    events = [CHAT.received("m1", t=0), CHAT.consent("m2", "opted_out", t=5), CHAT.edited("m1", "x", t=6),
              CHAT.received("m3", t=100)]  # fmt: skip
    ledger = _ledger(expired=at(50))
    kept = screened(message_items(events), ledger, keep_expired=True)
    assert [i.expired for i in kept] == [True, True, True, False]
    assert screened(message_items(events), ledger) == [message_items(events)[3]]  # other projections: left out
    ops = fold_messages(kept)
    assert list(ops.messages) == [CHAT.mid("m3")] and not ops.updates and len(ops.versions) == 1
    whole = fold_messages(message_items(events)).chats[CHAT.key]
    assert ops.chats[CHAT.key] == whole  # the same chat row as when nothing had expired
    erased = Ledger.of([(subject_hash("chat", CHAT.key), [], at(50))])
    assert screened(message_items(events), erased, keep_expired=True) == [message_items(events)[3]]


def test_status_shows_each_policy_or_that_it_keeps_forever() -> None:
    from streams.media.retention_sweep import PolicyPreview

    assert PolicyPreview("MESSAGE_RETENTION_DAYS", None).render() == "MESSAGE_RETENTION_DAYS: keep forever"
    texts = PolicyPreview("TRANSCRIPT_RETENTION_DAYS", 30, 4, 0, at(0))
    assert texts.render() == ("TRANSCRIPT_RETENTION_DAYS=30: next sweep 4 messages' texts cleared; "
                              "oldest goes 2026-11-20T09:00:00+00:00")  # fmt: skip
    assert texts.as_json() == {"policy": "TRANSCRIPT_RETENTION_DAYS", "days": 30, "due": 4, "files": 0,
                               "oldest_goes_at": "2026-11-20T09:00:00+00:00"}  # fmt: skip
    assert "nothing yet" in PolicyPreview("MEDIA_RETENTION_DAYS", 90).render()
