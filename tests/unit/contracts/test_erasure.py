"""The erasure ledger's subject names: hashed, normalised, and matched by every chat of a contact."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from contracts.deadletter import DeadLettered
from contracts.envelope import EventDecodeError
from contracts.erasure import ErasureRequested, Ledger, SubjectError, chat_subjects, decode, subject_hash
from projections.erasures.logic import chats_of, exclusive


def test_a_phone_is_hashed_from_its_digits_so_any_spelling_names_the_same_subject() -> None:
    assert subject_hash("phone", "+1 555-000-1111") == subject_hash("phone", "15550001111")
    assert subject_hash("phone", "15550001111") != subject_hash("chat", "whapi:1:15550001111")
    assert "15550001111" not in subject_hash("phone", "15550001111")


@pytest.mark.parametrize(("kind", "value"), [("phone", "call me"), ("chat", "not-a-key"), ("chat", "  ")])
def test_a_subject_naming_nothing_is_refused_without_its_value(kind: str, value: str) -> None:
    with pytest.raises(SubjectError) as caught:
        subject_hash(kind, value)  # type: ignore[arg-type]
    assert value.strip() not in str(caught.value) or not value.strip()


def test_a_chat_is_named_by_its_key_its_contact_phone_and_the_phone_its_id_is() -> None:
    subjects = chat_subjects("whapi:100:15550001111@s.whatsapp.net", None)
    assert subject_hash("phone", "15550001111") in subjects
    assert subject_hash("chat", "whapi:100:15550001111@s.whatsapp.net") in subjects
    assert subject_hash("phone", "15550001111") in chat_subjects("meta:200:lid-x", "15550001111")
    group = chat_subjects("whapi:100:120363000000000000@g.us", None)
    assert group == {subject_hash("chat", "whapi:100:120363000000000000@g.us")}


def test_erasing_a_phone_finds_each_of_its_chats_and_no_other() -> None:
    chats = [("whapi:1:15550001111", None), ("meta:2:15550001111", "15550001111"), ("meta:2:15550002222", None)]
    assert chats_of(subject_hash("phone", "+15550001111"), chats) == ["meta:2:15550001111", "whapi:1:15550001111"]
    assert chats_of(subject_hash("chat", "meta:2:15550002222"), chats) == ["meta:2:15550002222"]


def test_only_files_no_other_chat_uses_are_theirs_to_delete() -> None:
    assert exclusive(["a", "b", None, "a"], ["b", None]) == ["a"]


def test_the_event_round_trips_and_refuses_a_subject_that_is_no_hash() -> None:
    event = ErasureRequested(erasure_id="e1", subject_kind="phone", subject_hash=subject_hash("phone", "1555"),
                             requested_at=datetime(2026, 12, 1, tzinfo=UTC), requested_by="dana")  # fmt: skip
    assert decode(event.encode()) == event and event.key == event.subject_hash.encode()
    with pytest.raises(EventDecodeError) as caught:
        decode(event.encode().replace(event.subject_hash.encode(), b"15550001111"))
    assert "15550001111" not in str(caught.value)


def _at(minute: int) -> datetime:
    return datetime(2026, 12, 1, 12, minute, tzinfo=UTC)


def test_the_ledger_hides_what_was_received_before_the_erasure_and_lets_a_new_history_through() -> None:
    chat = "whapi:100:15550001111@s.whatsapp.net"
    ledger = Ledger.of([(subject_hash("phone", "15550001111"), [], _at(30))])
    assert ledger.hides(chat, _at(29)) and not ledger.hides(chat, _at(31))
    assert ledger.hides(chat, None)  # no time to tell: hidden
    assert not ledger.hides("whapi:100:15550002222@s.whatsapp.net", _at(1))
    later = Ledger.of([(subject_hash("phone", "15550001111"), [], _at(30)), (subject_hash("chat", chat), [], _at(40))])
    assert later.hides(chat, _at(35))


def test_a_chat_whose_id_is_no_phone_is_hidden_by_the_chat_hash_its_erasure_recorded() -> None:
    lid = "whapi:100:123456789@lid"
    ledger = Ledger.of([(subject_hash("phone", "15550001111"), [subject_hash("chat", lid)], _at(30))])
    assert ledger.hides(lid, _at(1)) and not Ledger().hides(lid, _at(1))


def test_records_and_events_are_read_by_their_chat_key_and_received_at() -> None:
    chat = "meta:200:15550001111"
    ledger = Ledger.of([(subject_hash("chat", chat), [], _at(30))])
    old = orjson.dumps({"chat_key": chat, "received_at": _at(10).isoformat()})
    new = orjson.dumps({"chat_key": chat, "received_at": _at(50).isoformat()})
    assert ledger.hides_record(chat.encode(), old) and not ledger.hides_record(chat.encode(), new)
    assert not ledger.hides_record(b"whapi:100", old)  # wa.raw's provider:channel key names no chat
    assert not ledger.hides_record(b"media", old)  # a dead letter's stage key
    letter = DeadLettered.of("media", topic="wa.messages", partition=0, offset=1, key=chat.encode(), value=b"{}",
                             headers=(), error=ValueError("x"), attempts=1)  # fmt: skip
    assert ledger.hides_event(letter.model_copy(update={"failed_at": _at(10)}))
    assert not ledger.hides_event(letter.model_copy(update={"failed_at": _at(50)}))
