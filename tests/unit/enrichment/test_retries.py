"""The StageRunner's retry schedule, Retry-After, give-up hook and bounded concurrency, with a
recording sleep instead of real waiting."""

from __future__ import annotations

import asyncio

import pytest

from contracts.deadletter import DeadLettered
from contracts.settings import Settings
from streams.common.outputs import RecordingOutputs
from streams.common.records import InputRecord, Output
from streams.common.runner import RetryPolicy, StageRunner
from runtime.errors import TransientError
from streams.common.enrichment.bootstrap import policy
from streams.media.main import retry_policy

RECORD = InputRecord("wa.media", 2, 41, b"chat", b"value")


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def failing(times: int, error: Exception):  # type: ignore[no-untyped-def]
    calls = []

    async def handle(record: InputRecord) -> list[Output]:
        calls.append(record.offset)
        if len(calls) <= times:
            raise error
        return [Output("wa.out", b"k", b"ok")]

    handle.calls = calls  # type: ignore[attr-defined]
    return handle


@pytest.mark.parametrize(
    ("name", "attempts", "waits"),
    [
        ("media", 3, [1, 2]),
        ("transcribe", 5, [2, 4, 8, 16]),
        ("caption", 3, [2, 4]),
        ("extract", 3, [2, 4]),
    ],
)
async def test_default_schedules_follow_the_issue(name: str, attempts: int, waits: list[float]) -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    policies = {
        "media": retry_policy(s),
        "transcribe": policy(s, s.transcribe_max_attempts, s.transcribe_retry_min_seconds, s.transcribe_retry_max_seconds),
        "caption": policy(s, s.caption_max_attempts, s.caption_retry_min_seconds, s.caption_retry_max_seconds),
        "extract": policy(s, s.extract_max_attempts, s.extract_retry_min_seconds, s.extract_retry_max_seconds),
    }
    sleeps, writer = Sleeps(), RecordingOutputs()
    handler = failing(100, TransientError("HTTP 500"))
    runner = StageRunner(name, handler, writer, policy=policies[name], sleep=sleeps)
    await runner.run_batch([RECORD])
    assert len(handler.calls) == attempts and sleeps.waits == waits  # type: ignore[attr-defined]
    [letter_out] = writer.written
    letter = DeadLettered.decode(letter_out.value)
    assert (letter.stage, letter.attempts, letter.topic, letter.partition, letter.offset) == (name, attempts, "wa.media", 2, 41)


def test_backoff_is_capped() -> None:
    assert [RetryPolicy(9, 2, 32).delay(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 32, 32, 32]
    assert RetryPolicy(3, 1, 8).delay(1) == 1  # normalize's old wait_exponential(min=1, max=8): unchanged


async def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    sleeps, writer = Sleeps(), RecordingOutputs()
    handler = failing(2, TransientError("HTTP 429", retry_after=7.5))
    runner = StageRunner("t", handler, writer, policy=RetryPolicy(5, 2, 32, retry_after_max_seconds=60), sleep=sleeps)
    await runner.run_batch([RECORD])
    assert sleeps.waits == [7.5, 7.5] and writer.written[0].value == b"ok"
    assert RetryPolicy(5, 2, 32, retry_after_max_seconds=10).delay(1, TransientError(retry_after=600)) == 10


async def test_poison_is_not_retried_and_give_up_adds_its_outputs() -> None:
    sleeps, writer = Sleeps(), RecordingOutputs()
    handler = failing(100, ValueError("bad input"))
    seen = []

    def give_up(record: InputRecord, error: BaseException, attempts: int) -> list[Output]:
        seen.append((record.offset, type(error).__name__, attempts))
        return [Output("wa.transcripts", b"k", b"failed")]

    runner = StageRunner("t", handler, writer, policy=RetryPolicy(5, 0, 0), give_up=give_up, sleep=sleeps)
    await runner.run_batch([RECORD])
    assert len(handler.calls) == 1 and not sleeps.waits  # type: ignore[attr-defined]
    assert [o.topic for o in writer.written] == ["wa.deadletter", "wa.transcripts"]
    assert seen == [(41, "ValueError", 1)]


async def test_a_failing_give_up_hook_still_dead_letters() -> None:
    writer = RecordingOutputs()

    def broken(*_args: object) -> list[Output]:
        raise RuntimeError("hook bug")

    runner = StageRunner("t", failing(9, ValueError("x")), writer, policy=RetryPolicy(1), give_up=broken)
    await runner.run_batch([RECORD])
    assert [o.topic for o in writer.written] == ["wa.deadletter"]


async def test_concurrency_is_bounded_and_outputs_keep_input_order() -> None:
    active = peak = 0

    async def slow(record: InputRecord) -> list[Output]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02 if record.offset % 2 else 0.01)
        active -= 1
        return [Output("wa.out", b"k", str(record.offset).encode())]

    writer = RecordingOutputs()
    records = [InputRecord("wa.media", 0, n, b"k", b"v") for n in range(20)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await StageRunner("t", slow, writer, concurrency=4).run_batch(records)
    assert peak == 4 and [o.value for o in writer.written] == [str(n).encode() for n in range(20)]
    assert loop.time() - started < 20 * 0.015  # concurrent, not one after another


def test_retry_after_headers() -> None:
    import email.utils
    import time

    from runtime.http_headers import retry_after

    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert retry_after({}) is None and retry_after({"retry-after": "soon"}) is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after({"retry-after": later}) <= 30  # type: ignore[operator]
