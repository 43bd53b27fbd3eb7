"""The embeddings projection's pure half: folding a batch and laying out a message's rows so that
chunk_index stays dense across sources, with only the rows that must change touched."""

from __future__ import annotations

from datetime import timedelta

from contracts.embeddings import ChunksReplaced, EmbeddedChunk, EmbeddingsRemoved, EmbeddingSkipped, encode_vector
from projections.embeddings.logic import Plan, StoredRow, fold, layout
from projections.items import Item
from tests.unit.projections.factory import T0

MID = "m1"


def replaced(source: str, n: int, t: float = 0, message_id: str = MID, tag: str = "") -> ChunksReplaced:
    chunks = tuple(
        EmbeddedChunk(index=i, start_token=560 * i, end_token=560 * i + 700, text=f"{source}{tag} {i}",
                      embedding=encode_vector([1.0, float(i)]))  # fmt: skip
        for i in range(n)
    )
    return ChunksReplaced(
        event_id=f"{message_id}-{source}-{t}-{tag}", chat_key="c", occurred_at=T0, received_at=T0, provider="whapi",
        channel_id="CH", delivery_id="d", message_id=message_id, provider_message_id="p", source=source,
        version_at=T0 + timedelta(seconds=t), text_sha256="00", token_count=700 * n, model="m", dimensions=2,
        tokenizer="cl100k_base", chunk_size_tokens=700, chunk_overlap_tokens=140, chunks=chunks,
        input_event_id="in", produced_at=T0,
    )  # type: ignore[arg-type]  # fmt: skip


def removed(message_id: str = MID, t: float = 0) -> EmbeddingsRemoved:
    return EmbeddingsRemoved(event_id=f"rm-{t}", chat_key="c", occurred_at=T0, received_at=T0, provider="whapi",
                             channel_id="CH", delivery_id="d", message_id=message_id, provider_message_id="p",
                             deleted_at=T0 + timedelta(seconds=t), input_event_id="in")  # fmt: skip


def items(*events: object) -> list[Item]:  # type: ignore[type-arg]
    return [Item(e, "wa.embeddings", 0, n, b"c", b"{}") for n, e in enumerate(events)]


def stored(*layout_: tuple[str, int]) -> list[StoredRow]:
    """Rows as the table holds them: (source, chunks) in order, numbered through the message."""
    rows: list[StoredRow] = []
    total = sum(n for _, n in layout_)
    for source, n in layout_:
        rows += [StoredRow(MID, source, len(rows) + i, total) for i in range(n)]
    return rows


def final(rows: list[StoredRow], plan: Plan) -> list[tuple[str, int, int]]:
    """Apply a plan to rows in memory (as Postgres would, statement by statement): (source, index, count)."""
    table = {(r.message_id, r.chunk_index): [r.source, r.chunk_count] for r in rows}
    cleared = set(plan.clear)
    table = {k: v for k, v in table.items() if (k[0], v[0]) not in cleared}
    for message_id, old, parked in plan.park:
        assert (message_id, parked) not in table
        table[(message_id, parked)] = table.pop((message_id, old))
    for new in plan.insert:
        assert (new.event.message_id, new.chunk_index) not in table, "insert onto a taken index"
        table[(new.event.message_id, new.chunk_index)] = [new.event.source, new.chunk_count]
    for message_id, parked, index, count in plan.place:
        assert (message_id, index) not in table, "move onto a taken index"
        table[(message_id, index)] = [table.pop((message_id, parked))[0], count]
    for message_id, index, count in plan.recount:
        table[(message_id, index)][1] = count
    return sorted((v[0], k[1], v[1]) for k, v in table.items())


def test_fold_keeps_the_newest_replacement_per_source_and_drops_a_deleted_message() -> None:
    newer, older = replaced("text", 1, t=9, tag="new"), replaced("text", 2, t=5, tag="old")
    ops = fold(items(newer, older, replaced("transcript", 1), replaced("text", 1, message_id="gone"),
                     removed("gone", t=3), removed("gone", t=1)))  # fmt: skip
    assert ops.replacements[(MID, "text")] is newer and (MID, "transcript") in ops.replacements
    assert set(ops.removals) == {"gone"} and ops.removals["gone"].deleted_at == T0 + timedelta(seconds=1)
    assert ("gone", "text") not in ops.replacements


def test_fold_ignores_skips_and_a_tie_goes_to_the_later_record() -> None:
    first, second = replaced("text", 1, t=5, tag="a"), replaced("text", 1, t=5, tag="b")
    skipped = EmbeddingSkipped(event_id="s", chat_key="c", occurred_at=T0, received_at=T0, provider="whapi",
                               channel_id="CH", delivery_id="d", message_id=MID, provider_message_id="p",
                               source="caption", reason="no_api_key", input_event_id="in")  # fmt: skip
    ops = fold(items(first, skipped, second))
    assert list(ops.replacements.values()) == [second] and not ops.removals


def test_a_first_text_is_inserted_from_zero() -> None:
    plan = layout([], [replaced("text", 3)])
    assert [(r.chunk_index, r.chunk_count, r.chunk.index) for r in plan.insert] == [(0, 3, 0), (1, 3, 1), (2, 3, 2)]
    assert not plan.park and not plan.place and not plan.recount


def test_a_transcript_after_the_text_appends_and_recounts_only() -> None:
    rows = stored(("text", 1))
    plan = layout(rows, [replaced("transcript", 2)])
    assert final(rows, plan) == [("text", 0, 3), ("transcript", 1, 3), ("transcript", 2, 3)]
    assert plan.recount == [(MID, 0, 3)] and not plan.park


def test_an_edit_of_the_same_length_touches_nothing_else() -> None:
    rows = stored(("text", 1), ("caption", 1), ("document", 4))
    plan = layout(rows, [replaced("text", 1, t=9)])
    assert final(rows, plan) == [("caption", 1, 6), ("document", 2, 6), ("document", 3, 6), ("document", 4, 6),
                                 ("document", 5, 6), ("text", 0, 6)]  # fmt: skip
    assert not plan.park and not plan.place and not plan.recount and len(plan.insert) == 1


def test_a_longer_edit_renumbers_the_later_sources_without_collisions() -> None:
    rows = stored(("text", 1), ("caption", 1), ("document", 3))
    plan = layout(rows, [replaced("text", 3, t=9)])
    assert final(rows, plan) == [
        ("caption", 3, 7), ("document", 4, 7), ("document", 5, 7), ("document", 6, 7),
        ("text", 0, 7), ("text", 1, 7), ("text", 2, 7),
    ]  # fmt: skip
    assert len(plan.park) == len(plan.place) == 4


def test_a_shorter_edit_closes_the_gap_and_an_empty_one_removes_the_source() -> None:
    rows = stored(("text", 3), ("transcript", 2))
    assert final(rows, layout(rows, [replaced("text", 1, t=9)])) == [
        ("text", 0, 3), ("transcript", 1, 3), ("transcript", 2, 3)]  # fmt: skip
    assert final(rows, layout(rows, [replaced("text", 0, t=9)])) == [("transcript", 0, 2), ("transcript", 1, 2)]


def test_a_source_arriving_before_an_earlier_one_shifts_it() -> None:
    rows = stored(("document", 2))
    plan = layout(rows, [replaced("text", 1), replaced("caption", 1)])
    assert final(rows, plan) == [("caption", 1, 4), ("document", 2, 4), ("document", 3, 4), ("text", 0, 4)]
