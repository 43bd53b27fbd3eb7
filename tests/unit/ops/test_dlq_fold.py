from datetime import UTC, datetime

import orjson
import pytest

from contracts import deadletter
from contracts.deadletter import DeadLettered, DeadLetterResolved, DeadLetterRetried
from msgmem.dlq import fold, operator, select


def letter(offset: int, stage: str = "normalize") -> DeadLettered:
    return DeadLettered.of(
        stage, topic="wa.raw", partition=0, offset=offset, key=b"k", value=b"v", headers=[("h", b"1")],
        error=ValueError("bad"), attempts=3,
    )


def retried(of: DeadLettered, by: str = "dana") -> DeadLetterRetried:
    return DeadLetterRetried(dead_letter_id=of.dead_letter_id, stage=of.stage, retried_by=by, retried_at=datetime.now(UTC))


def resolved(of: DeadLettered) -> DeadLetterResolved:
    return DeadLetterResolved(dead_letter_id=of.dead_letter_id, stage=of.stage, outputs=2, resolved_at=datetime.now(UTC))


def test_a_letter_is_open_then_retried_then_resolved() -> None:
    a, b = letter(1), letter(2)
    letters = fold([a, b, retried(a)])
    assert (letters[a.dead_letter_id].state, letters[b.dead_letter_id].state) == ("retried", "open")
    assert letters[a.dead_letter_id].retried.retried_by == "dana"  # type: ignore[union-attr]
    letters = fold([a, b, retried(a), resolved(a)])
    assert not letters[a.dead_letter_id].open and letters[a.dead_letter_id].state == "resolved"
    assert [x.letter.dead_letter_id for x in select(letters, stage=None, ids=[], everything=True)] == [b.dead_letter_id]


def test_a_retry_that_logged_no_outcome_may_be_retried_again() -> None:
    a = letter(1)
    assert [x.letter.dead_letter_id for x in select(fold([a, retried(a)]), stage=None, ids=[], everything=True)] == [
        a.dead_letter_id
    ]


def test_the_same_input_failing_again_reopens_it_and_counts_failures() -> None:
    a = letter(1)
    letters = fold([a, retried(a), letter(1)])
    assert letters[a.dead_letter_id].open and letters[a.dead_letter_id].failures == 2
    assert letters[a.dead_letter_id].retried.retried_by == "dana"  # type: ignore[union-attr]  # who tried, kept


def test_a_marker_from_before_retries_were_logged_resolves_its_letter() -> None:
    """schema_version 1: written only after the retry went through; no retried_by."""
    a = letter(1)
    old = {"type": "dead_letter_retried", "schema_version": 1, "dead_letter_id": a.dead_letter_id,
           "stage": a.stage, "outputs": 2, "retried_at": "2026-11-20T09:00:00+00:00"}  # fmt: skip
    marker = deadletter.decode(orjson.dumps(old))
    assert isinstance(marker, DeadLetterRetried) and (marker.retried_by, marker.outputs) == ("unknown", 2)
    assert deadletter.state_after(marker) == "resolved" and fold([a, marker])[a.dead_letter_id].state == "resolved"
    current, done = retried(a), resolved(a)
    assert (deadletter.decode(current.encode()), deadletter.decode(done.encode())) == (current, done)


def test_the_operator_is_named_or_the_user_or_msgmem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "ops-on-call")
    assert (operator("dana"), operator(None)) == ("dana", "ops-on-call")
    monkeypatch.delenv("USER")
    assert operator(None) == operator("  ") == "msgmem"


def test_selection_by_id_and_stage() -> None:
    a, b = letter(1), letter(2, stage="transcribe")
    letters = fold([a, b])
    assert select(letters, stage=None, ids=[], everything=False) == []
    assert [x.letter.stage for x in select(letters, stage="transcribe", ids=[], everything=True)] == ["transcribe"]
    assert [x.letter.offset for x in select(letters, stage=None, ids=[a.dead_letter_id], everything=False)] == [1]


def test_wire_roundtrip_keeps_the_original_bytes() -> None:
    a = letter(7)
    decoded = deadletter.decode(a.encode())
    assert isinstance(decoded, DeadLettered)
    assert (decoded.key, decoded.value, decoded.kafka_headers) == (b"k", b"v", [("h", b"1")])


def part_letter(offset: int, part: str) -> DeadLettered:
    return DeadLettered.of(
        "normalize", topic="wa.raw", partition=3, offset=offset, key=b"k", value=b"v", headers=[],
        error=ValueError("messages[2]: KeyError 'id'"), attempts=1, part=part,
    )


def test_a_letter_for_one_item_of_a_record_names_the_part_in_its_id() -> None:
    whole, item = letter(5), part_letter(5, "messages[2]")
    assert whole.dead_letter_id == "normalize:wa.raw:0:5" and whole.part is None
    assert item.dead_letter_id == "normalize:wa.raw:3:5#messages[2]" and item.part == "messages[2]"
    assert deadletter.decode(item.encode()) == item


def test_items_of_one_record_are_separate_letters_retried_separately() -> None:
    a, b = part_letter(5, "messages[1]"), part_letter(5, "messages[3]")
    letters = fold([a, b, retried(a)])
    assert [x.letter.part for x in letters.values() if x.open] == ["messages[3]"]
    assert (letters[a.dead_letter_id].failures, letters[b.dead_letter_id].failures) == (1, 1)


def test_a_letter_written_before_parts_existed_still_decodes_with_its_id() -> None:
    old = letter(9).model_dump(mode="json")
    del old["part"]
    decoded = deadletter.decode(orjson.dumps(old))
    assert isinstance(decoded, DeadLettered)
    assert (decoded.part, decoded.dead_letter_id) == (None, "normalize:wa.raw:0:9")
