"""The batch policy: decode poison and refused events are dead-lettered, the rest applied,
transient failures retried, and no offset is stored past a letter before the letter is sent."""

from __future__ import annotations

import itertools
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition

from contracts.deadletter import DeadLettered
from projections.batch import BatchApplier, RetryPolicy
from projections.errors import BatchAbandoned, OffsetsBehind, is_poison
from projections.metrics import ProjectorMetrics
from tests.unit.projections.fakes import FakeDeadLetters, FakeStore, record

FAST = RetryPolicy(poison_attempts=2, min_wait=0, max_wait=0)
TP0, TP1 = TopicPartition("wa.messages", 0), TopicPartition("wa.messages", 1)


def decode(value: bytes) -> str:
    text = value.decode()
    if text.startswith("bad"):
        raise ValueError(f"cannot decode {text}")
    return text


def nul_refused(event: Any) -> BaseException | None:
    return asyncpg.CharacterNotInRepertoireError("invalid byte sequence 0x00") if "\x00" in event else None


def applier(store: FakeStore, letters: FakeDeadLetters, metrics: ProjectorMetrics | None = None) -> BatchApplier[str]:
    return BatchApplier(stage="projector", decode=decode, store=store, dead_letters=letters,
                        metrics=metrics or ProjectorMetrics("test"), policy=FAST)  # fmt: skip


def never() -> bool:
    return False


async def test_a_batch_is_applied_with_its_next_offsets() -> None:
    store, letters = FakeStore(), FakeDeadLetters()
    offsets = await applier(store, letters).handle([record(b"a", 5), record(b"b", 6), record(b"c", 9, 1)], never)
    assert offsets == {TP0: 7, TP1: 10}
    assert (store.applied, store.offsets, store.calls) == (["a", "b", "c"], {TP0: 7, TP1: 10}, 1)


async def test_undecodable_records_are_dead_lettered_and_the_rest_applied() -> None:
    journal: list[Any] = []
    store, letters = FakeStore(journal), FakeDeadLetters(journal)
    metrics = ProjectorMetrics("test")
    await applier(store, letters, metrics).handle([record(b"a", 0), record(b"bad1", 1), record(None, 2)], never)
    assert store.applied == ["a"]
    assert store.offsets == {TP0: 3}
    assert [(d.offset, d.error_type, d.attempts) for d in letters.sent] == [(1, "ValueError", 1),
                                                                            (2, "EventDecodeError", 1)]
    letter = DeadLettered.decode(letters.sent[0].encode())
    assert (letter.dead_letter_id, letter.value, letter.key, letter.kafka_headers) == (
        "projector:wa.messages:0:1", b"bad1", b"k", [("h", b"v")])
    assert journal[:2] == [("letter", 1), ("letter", 2)]  # sent before the offsets moved past them
    assert metrics.registry.get_sample_value(
        "msgmem_projector_dead_lettered_total", {"projection": "test", "reason": "undecodable"}) == 2


async def test_events_postgres_refuses_are_found_by_bisection_and_the_rest_applied() -> None:
    journal: list[Any] = []
    store, letters = FakeStore(journal, refuse=nul_refused), FakeDeadLetters(journal)
    values = [f"e{n}".encode() for n in range(10)]
    values[3], values[8] = b"x\x00", b"y\x00"
    records = [record(v, n) for n, v in enumerate(values)] + [record(b"p1", 0, partition=1)]
    await applier(store, letters).handle(records, never)

    assert store.applied == [f"e{n}" for n in range(10) if n not in (3, 8)] + ["p1"]
    assert [(d.offset, d.error_type, d.attempts) for d in letters.sent] == [
        (3, "CharacterNotInRepertoireError", 2), (8, "CharacterNotInRepertoireError", 2)]
    assert store.offsets == {TP0: 10, TP1: 1}
    for n, entry in enumerate(journal):  # no commit stores an offset past a letter not yet sent
        if entry[0] == "letter":
            assert all(c[1].get(TP0, 0) <= entry[1] for c in journal[:n] if c[0] == "commit")


async def test_transient_failures_are_retried_until_they_pass() -> None:
    store, letters = FakeStore(), FakeDeadLetters()
    store.failures = [ConnectionRefusedError(), asyncpg.CannotConnectNowError("starting up"), OSError("reset")]
    letters.failures = [ConnectionError("broker down")]
    metrics = ProjectorMetrics("test")
    await applier(store, letters, metrics).handle([record(b"a", 0), record(b"bad", 1)], never)
    assert (store.applied, store.offsets, len(letters.sent)) == (["a"], {TP0: 2}, 1)
    assert metrics.registry.get_sample_value(
        "msgmem_projector_retries_total", {"projection": "test", "kind": "transient"}) == 4


async def test_a_batch_stuck_retrying_is_abandoned_when_revoked() -> None:
    store, letters = FakeStore(), FakeDeadLetters()
    store.failures = [ConnectionRefusedError()] * 5
    calls = itertools.chain([False, False], itertools.repeat(True))
    with pytest.raises(BatchAbandoned):
        await applier(store, letters).handle([record(b"a", 0)], lambda: next(calls))
    assert store.offsets == {}


async def test_already_applied_records_are_skipped() -> None:
    store, letters = FakeStore(), FakeDeadLetters()
    store.offsets = {TP0: 2}
    metrics = ProjectorMetrics("test")
    await applier(store, letters, metrics).handle([record(b"a", 0), record(b"b", 1), record(b"c", 2)], never)
    assert store.applied == ["c"]
    assert metrics.registry.get_sample_value("msgmem_projector_events_skipped_total", {"projection": "test"}) == 2


@pytest.mark.parametrize(
    ("error", "poison"),
    [
        (asyncpg.CharacterNotInRepertoireError("0x00"), True),
        (asyncpg.UntranslatableCharacterError("\\u0000"), True),
        (asyncpg.CheckViolationError("check"), True),
        (asyncpg.ProgramLimitExceededError("index row too big"), True),
        (ValueError("a shape the fold does not handle"), True),
        (asyncpg.UndefinedColumnError("no column"), False),  # a migration missing: wait, never dead-letter
        (asyncpg.ConnectionDoesNotExistError("gone"), False),
        (asyncpg.DeadlockDetectedError("deadlock"), False),
        (ConnectionResetError(), False),
        (TimeoutError(), False),
    ],
)
def test_error_classification(error: BaseException, poison: bool) -> None:
    assert is_poison(error) is poison


async def test_stored_offsets_behind_the_projector_raise_and_write_nothing() -> None:
    """Postgres acknowledged commits up to offset 10 and then lost them (a crash with
    synchronous_commit off, a failover to a lagging replica): the next batch finds the stored
    offset at 6, writes nothing and says where to start again, without retrying."""
    store, letters = FakeStore(), FakeDeadLetters()
    store.offsets[TP0] = 6
    with pytest.raises(OffsetsBehind) as behind:
        await applier(store, letters).handle([record(b"k", 10), record(b"l", 11)], never, expected={TP0: 10})
    assert behind.value.stored == {TP0: 6}
    assert store.applied == [] and store.calls == 1 and store.offsets[TP0] == 6


async def test_stored_offsets_where_the_projector_left_them_pass() -> None:
    store, letters = FakeStore(), FakeDeadLetters()
    store.offsets[TP0] = 10
    assert await applier(store, letters).handle([record(b"k", 10)], never, expected={TP0: 10, TP1: 3}) == {TP0: 11}
    assert store.applied == ["k"]
