from datetime import UTC, datetime

from contracts import deadletter
from contracts.deadletter import DeadLettered, DeadLetterRetried
from msgmem.dlq import fold, select


def letter(offset: int, stage: str = "normalize") -> DeadLettered:
    return DeadLettered.of(
        stage, topic="wa.raw", partition=0, offset=offset, key=b"k", value=b"v", headers=[("h", b"1")],
        error=ValueError("bad"), attempts=3,
    )


def retried(of: DeadLettered) -> DeadLetterRetried:
    return DeadLetterRetried(dead_letter_id=of.dead_letter_id, stage=of.stage, outputs=2, retried_at=datetime.now(UTC))


def test_a_letter_is_open_until_a_retry_marker_follows() -> None:
    a, b = letter(1), letter(2)
    letters = fold([a, b, retried(a)])
    assert not letters[a.dead_letter_id].open and letters[b.dead_letter_id].open
    assert [x.letter.dead_letter_id for x in select(letters, stage=None, ids=[], everything=True)] == [b.dead_letter_id]


def test_the_same_input_failing_again_reopens_it_and_counts_failures() -> None:
    a = letter(1)
    letters = fold([a, retried(a), letter(1)])
    assert letters[a.dead_letter_id].open and letters[a.dead_letter_id].failures == 2


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
