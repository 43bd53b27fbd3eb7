"""Our own store down is not the input's fault: the runner holds a record whose handler raises
``StoreUnavailable`` (without counting its attempts) and a batch whose erasure-ledger screen
cannot read, and nothing becomes a dead letter; a screen still hides erased inputs and outputs."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from contracts import deadletter
from contracts.erasure import Ledger, subject_hash
from runtime.errors import StoreUnavailable, TransientError
from streams.common.erasure_guard import LedgerScreen
from streams.common.outputs import RecordingOutputs
from streams.common.records import InputRecord, Output
from streams.common.runner import RetryPolicy, StageRunner

CHAT = "whapi:100:15550001111@s.whatsapp.net"
OTHER = "whapi:100:15550002222@s.whatsapp.net"
ERASED_AT = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def record(offset: int, chat: str = CHAT, minute: int = 10) -> InputRecord:
    at = datetime(2026, 12, 1, 12, minute, tzinfo=UTC).isoformat()
    return InputRecord("wa.media", 0, offset, chat.encode(), orjson.dumps({"chat_key": chat, "received_at": at}))


async def echo(rec: InputRecord) -> list[Output]:
    return [Output("wa.transcripts", rec.key or b"", rec.value)]


class DownLedger:
    """A ledger cache whose first ``down`` reads fail as an unreachable Postgres does."""

    def __init__(self, down: int, ledger: Ledger = Ledger()) -> None:
        self.down = down
        self.reads = 0
        self._ledger = ledger

    async def current(self) -> Ledger:
        self.reads += 1
        if self.reads <= self.down:
            raise StoreUnavailable("erasure ledger unreadable: ConnectionRefusedError")
        return self._ledger


async def test_a_store_outage_longer_than_every_attempt_holds_the_record_and_makes_no_dead_letter() -> None:
    failures = 12  # far more than the policy's 3 attempts

    async def handler(rec: InputRecord) -> list[Output]:
        nonlocal failures
        if failures:
            failures -= 1
            raise StoreUnavailable("result cache unavailable: ConnectionRefusedError")
        return await echo(rec)

    sleeps, writer = Sleeps(), RecordingOutputs()
    runner = StageRunner("caption", handler, writer, policy=RetryPolicy(3, 1, 8), sleep=sleeps)
    await runner.run_batch([record(1)])

    assert [o.topic for o in writer.written] == ["wa.transcripts"]
    assert runner.metrics.failed._value.get() == 0 and runner.metrics.retried._value.get() == 0
    assert len(sleeps.waits) == 12 and max(sleeps.waits) == 8.0  # backoff doubling, capped


async def test_a_record_failing_for_its_own_reason_still_uses_its_attempts() -> None:
    async def handler(_rec: InputRecord) -> list[Output]:
        raise TransientError("HTTP 500")

    writer = RecordingOutputs()
    runner = StageRunner("caption", handler, writer, policy=RetryPolicy(3, 1, 8), sleep=Sleeps())
    await runner.run_batch([record(1)])
    assert [o.topic for o in writer.written] == [deadletter.TOPIC]


async def test_an_unreadable_ledger_holds_the_batch_then_it_runs_whole() -> None:
    sleeps, writer = Sleeps(), RecordingOutputs()
    ledger = DownLedger(down=9)
    screen = LedgerScreen(ledger, sleep=sleeps)  # type: ignore[arg-type]
    runner = StageRunner("media", echo, writer, policy=RetryPolicy(3, 1, 8), concurrency=4, screen=screen, sleep=Sleeps())
    await runner.run_batch([record(n) for n in range(6)])

    assert ledger.reads == 10  # once per batch, not per record: nine failures, then one read
    assert len(writer.written) == 6 and all(o.topic == "wa.transcripts" for o in writer.written)
    assert runner.metrics.failed._value.get() == 0
    assert sleeps.waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0]


async def test_the_screen_skips_erased_inputs_and_drops_outputs_about_erased_chats() -> None:
    erased = Ledger.of([(subject_hash("phone", "15550001111"), [], ERASED_AT)])
    seen: list[int] = []

    async def handler(rec: InputRecord) -> list[Output]:
        seen.append(rec.offset)
        # a parser can name another chat than its input's key (normalize learns chats so)
        return [Output("wa.messages", CHAT.encode(), record(0, minute=10).value), *await echo(rec)]

    writer = RecordingOutputs()
    runner = StageRunner("media", handler, writer, screen=LedgerScreen(DownLedger(0, erased)))  # type: ignore[arg-type]
    await runner.run_batch([record(1, minute=10), record(2, minute=40), record(3, chat=OTHER)])

    assert seen == [2, 3]  # offset 1 was received before the erasure: never handled
    assert [(o.topic, o.key) for o in writer.written] == [
        ("wa.transcripts", CHAT.encode()),  # received after the erasure: a new history
        ("wa.transcripts", OTHER.encode()),
    ]
