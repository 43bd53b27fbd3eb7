"""The rebuild's pure parts: which projections ``--tables`` selects, how partitions are shared
between workers, what the report says and which exit code it gives."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition

from contracts.settings import Settings
from projections.rebuild.run import _decision
from projections.rebuild.compare import Checksum, RowDifference, TableComparison
from projections.rebuild.indexes import memory_mb
from projections.rebuild.plan import _retarget
from projections.rebuild.report import ProjectionReport, RebuildReport, render
from projections.rebuild.targets import RebuildError, resolve
from projections.rebuild.workers import split

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]


def tp(p: int) -> TopicPartition:
    return TopicPartition("wa.messages", p)


MESSAGES = ("chat_messages", ("chats", "chat_messages", "chat_message_pending", "chat_message_versions",
                             "chat_consent_changes"))
MEDIA = ("chat_media", ("chat_media",))
EMBEDDINGS = ("message_embeddings", ("message_embeddings", "message_embedding_sources", "message_embedding_deletions"))
LETTERS = ("dead_letters", ("dead_letters",))


@pytest.mark.parametrize(("names", "chosen"), [
    (None, [MESSAGES, MEDIA, EMBEDDINGS, LETTERS]), ([], [MESSAGES, MEDIA, EMBEDDINGS, LETTERS]),
    (["dead_letters"], [LETTERS]), (["deadletters"], [LETTERS]),
    (["messages"], [MESSAGES]), (["chat_messages"], [MESSAGES]), (["chats"], [MESSAGES]),
    (["chats,chat_message_pending"], [MESSAGES]), (["media"], [MEDIA]), (["chat_media"], [MEDIA]),
    (["message_embedding_deletions"], [EMBEDDINGS]), (["embeddings", "chats"], [MESSAGES, EMBEDDINGS]),
])  # fmt: skip
def test_any_table_of_a_projection_selects_the_whole_projection(
    names: list[str] | None, chosen: list[tuple[str, tuple[str, ...]]]
) -> None:
    assert [(t.name, t.tables) for t in resolve(SETTINGS, names)] == chosen


def test_each_projection_reads_what_its_live_projector_reads() -> None:
    topics = {t.name: t.topics for t in resolve(SETTINGS, None)}
    assert topics == {"chat_messages": ("wa.messages",), "message_embeddings": ("wa.embeddings",),
                      "chat_media": ("wa.media", "wa.transcripts", "wa.captions", "wa.documents"),
                      "dead_letters": ("wa.deadletter",)}  # fmt: skip


def test_an_unknown_table_is_refused_with_the_known_names() -> None:
    with pytest.raises(RebuildError, match="nothing rebuilds nope, wa.media; known: .*chat_media.*chat_messages"):
        resolve(SETTINGS, ["nope", "chat_media", "wa.media"])


def test_partitions_are_shared_by_events_not_by_count() -> None:
    start = {tp(p): 0 for p in range(6)}
    goal = {tp(0): 900, tp(1): 100, tp(2): 100, tp(3): 100, tp(4): 0, tp(5): 600}
    groups = split(start, goal, 2)
    assert groups == [[tp(0)], [tp(5), tp(1), tp(2), tp(3)]]
    assert split(start, goal, 8) == [[tp(0)], [tp(5)], [tp(1)], [tp(2)], [tp(3)]]  # nothing to do on 4
    assert split({tp(0): 50}, {tp(0): 50}, 2) == []
    assert split(start, {tp(3): 10}, 1) == [[tp(3)]]


def test_a_partition_number_goes_to_one_worker_with_every_topic() -> None:
    """A chat is on the same partition number of every topic: its media and results meet."""
    media, captions = (lambda p: TopicPartition("wa.media", p)), (lambda p: TopicPartition("wa.captions", p))
    goal = {media(0): 500, media(1): 300, media(2): 100, captions(0): 10, captions(1): 100, captions(2): 350}
    groups = split({}, goal, 2)
    assert groups == [[media(0), captions(0)], [media(2), captions(2), media(1), captions(1)]]
    assert split({media(0): 500}, goal, 3) == [[media(2), captions(2)], [media(1), captions(1)], [captions(0)]]


def _comparison(table: str, live: int, rebuilt: int, **kw: Any) -> TableComparison:
    return TableComparison(table, Checksum(live, f"{live:016x}"), Checksum(rebuilt, f"{rebuilt:016x}"), **kw)


def test_the_decision_follows_the_flags() -> None:
    same, different = [_comparison("chats", 1, 1)], [_comparison("chats", 1, 2)]
    assert _decision(dry_run=False, require_match=False, truncated=False)(different, 0)[0]
    assert _decision(dry_run=False, require_match=True, truncated=False)(same, 0)[0]
    assert not _decision(dry_run=False, require_match=True, truncated=False)(different, 0)[0]
    assert not _decision(dry_run=True, require_match=False, truncated=False)(same, 0)[0]
    assert not _decision(dry_run=False, require_match=False, truncated=True)(same, 0)[0]


def test_the_report_names_the_differing_rows_and_columns() -> None:
    changed = RowDifference({"id": "m1"}, "changed", ("body", "status"))
    gone = RowDifference({"id": "m2"}, "only_rebuilt")
    p = ProjectionReport("chat_messages", ("chats", "chat_messages"), events=1000, undecodable=1,
                         skipped_at=["wa.messages[0]@3 (undecodable)"], swapped=True, outcome="swapped")  # fmt: skip
    p.comparisons = [_comparison("chats", 5, 5), _comparison("chat_messages", 9, 10, changed=1, only_rebuilt=1,
                                                             samples=(changed, gone))]  # fmt: skip
    p.phases.total = 2.0
    text = render(RebuildReport([p]))
    assert "1,000 events in 2.0s = 500 events/s" in text
    assert "DIFFERENT: 1 changed, 0 only live, 1 only rebuilt" in text
    assert "id=m1: columns body, status" in text and "id=m2: only rebuilt" in text
    assert "wa.messages[0]@3 (undecodable)" in text
    assert RebuildReport([p]).exit_code == 0
    assert RebuildReport([p], dry_run=True).exit_code == 1
    assert RebuildReport([p], require_match=True).exit_code == 1
    p.comparisons = p.comparisons[:1]
    assert RebuildReport([p], require_match=True).exit_code == 0
    assert RebuildReport([p]).as_json()["projections"][0]["match"] is True


def test_definitions_are_moved_to_the_shadow_table_once() -> None:
    definition = "CREATE INDEX chats_idx ON public.chats USING btree (contact_phone) WHERE (x ON public.chats USING y)"
    moved = _retarget(definition, " ON public.chats USING ", ' ON "s"."chats" USING ')
    assert moved.startswith('CREATE INDEX chats_idx ON "s"."chats" USING btree')
    assert moved.endswith("WHERE (x ON public.chats USING y)")
    with pytest.raises(RebuildError):
        _retarget(definition, " ON public.other USING ", " ON s.other USING ")


def test_an_index_build_gets_the_memory_it_wants_within_bounds() -> None:
    assert memory_mb(0, 2048) == memory_mb(100 * 2**20, 2048) == 256  # the rebuild's usual
    assert memory_mb(700 * 2**20 + 1, 2048) == 701
    assert memory_mb(9 * 2**30, 2048) == 2048
    assert memory_mb(9 * 2**30, 64) == 256
