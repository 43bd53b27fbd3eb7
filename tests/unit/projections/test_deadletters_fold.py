"""The dead_letters projection's pure fold: a letter makes an open row, a retry makes it
retried (who, when), the stage failing again on the same input reopens it (attempts and
failures grow, last_seen moves), and a resolution closes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from contracts import deadletter
from contracts.deadletter import AnyLetterEvent, DeadLettered, DeadLetterResolved, DeadLetterRetried
from contracts.envelope import EventDecodeError
from contracts.errors import SafeError
from projections.deadletters.logic import LetterChange, fold
from projections.deadletters.main import PROJECTOR
from projections.items import Item

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class Malformed(SafeError):
    """An error whose message is safe to keep (types and field paths), as stages raise them."""


def letter(t: float, *, attempts: int = 3, error: Exception | None = None, part: str | None = None) -> DeadLettered:
    made = DeadLettered.of(
        "normalize", topic="wa.raw", partition=2, offset=41, key=b"whapi:TESTCH", value=b"{}", headers=[],
        error=error or Malformed("messages[0].id: missing"), attempts=attempts, part=part,
    )  # fmt: skip
    return made.model_copy(update={"failed_at": T0 + timedelta(seconds=t)})


def retried(t: float, by: str = "dana", of: DeadLettered | None = None) -> DeadLetterRetried:
    return DeadLetterRetried(dead_letter_id=(of or letter(0)).dead_letter_id, stage="normalize", retried_by=by,
                             retried_at=T0 + timedelta(seconds=t))  # fmt: skip


def resolved(t: float, outputs: int = 1) -> DeadLetterResolved:
    return DeadLetterResolved(dead_letter_id=letter(0).dead_letter_id, stage="normalize", outputs=outputs,
                              resolved_at=T0 + timedelta(seconds=t))  # fmt: skip


def changes(events: list[AnyLetterEvent], start: int = 100) -> list[LetterChange]:
    items = [Item(e, deadletter.TOPIC, 0, start + n, b"normalize", e.encode()) for n, e in enumerate(events)]
    return fold(items)


def test_a_letter_is_an_open_row_with_its_error_coordinates_and_key() -> None:
    [row] = changes([letter(0)])
    assert (row.letter_id, row.stage, row.state) == ("normalize:wa.raw:2:41", "normalize", "open")
    assert (row.error_type, row.error, row.attempts, row.failures) == ("Malformed", "Malformed: messages[0].id: missing", 3, 1)
    assert (row.source_topic, row.source_partition, row.source_offset, row.part) == ("wa.raw", 2, 41, None)
    assert (row.key, row.value_omitted, row.first_seen, row.last_seen) == ("whapi:TESTCH", False, T0, T0)
    assert (row.retried_by, row.retried_at, row.resolved_at, row.outputs, row.last_offset) == (None, None, None, None, 100)


def test_a_retry_makes_it_retried_with_who_and_when() -> None:
    [row] = changes([letter(0), retried(10)])
    assert (row.state, row.retried_by, row.retried_at, row.last_offset) == ("retried", "dana", T0 + timedelta(seconds=10), 101)


def test_the_same_input_failing_again_reopens_it() -> None:
    [row] = changes([letter(0), retried(10), letter(11, attempts=1, error=KeyError("waha"))])
    assert (row.state, row.failures, row.attempts) == ("open", 2, 4)
    assert (row.first_seen, row.last_seen) == (T0, T0 + timedelta(seconds=11))
    assert (row.error_type, row.retried_by) == ("KeyError", "dana")  # the latest error; who tried is kept


def test_a_resolution_closes_it_and_a_later_letter_reopens_it() -> None:
    [row] = changes([letter(0), retried(10), resolved(12, outputs=3)])
    assert (row.state, row.resolved_at, row.outputs) == ("resolved", T0 + timedelta(seconds=12), 3)
    [row] = changes([letter(0), retried(10), resolved(12), letter(20, attempts=1)])
    assert (row.state, row.resolved_at, row.outputs, row.failures) == ("open", None, None, 2)


def test_markers_alone_change_a_row_of_an_earlier_batch() -> None:
    [row] = changes([retried(10, by="ops"), resolved(12)])
    assert (row.failures, row.attempts, row.state, row.retried_by) == (0, 0, "resolved", "ops")


def test_letters_of_items_and_records_are_rows_of_their_own() -> None:
    rows = changes([letter(0), letter(0, part="messages[2]"), retried(5, of=letter(0, part="messages[2]"))])
    assert [(r.letter_id, r.state, r.part) for r in rows] == [
        ("normalize:wa.raw:2:41", "open", None), ("normalize:wa.raw:2:41#messages[2]", "retried", "messages[2]"),
    ]  # fmt: skip


def test_a_marker_from_before_retries_were_logged_resolves() -> None:
    old = {"type": "dead_letter_retried", "schema_version": 1, "dead_letter_id": letter(0).dead_letter_id,
           "stage": "normalize", "outputs": 2, "retried_at": T0.isoformat()}  # fmt: skip
    [row] = changes([letter(0), PROJECTOR.decode(orjson.dumps(old))])
    assert (row.state, row.retried_by, row.resolved_at, row.outputs) == ("resolved", "unknown", T0, 2)


def test_texts_postgres_cannot_hold_are_cleaned_and_garbage_does_not_decode() -> None:
    odd = DeadLettered.of("normalize", topic="wa.raw", partition=0, offset=1, key=b"a\x00b\xff", value=b"",
                          headers=[], error=Malformed("x\x00y"), attempts=1)  # fmt: skip
    [row] = changes([odd])
    assert (row.key, row.error) == ("ab\ufffd", "Malformed: xy")
    for garbage in (b"not json", b"{}", b'{"type": "media_stored"}'):
        with pytest.raises(EventDecodeError):
            PROJECTOR.decode(garbage)
