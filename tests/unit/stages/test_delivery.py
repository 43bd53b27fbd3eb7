"""At-least-once in the stage runner and its Kafka writer: a transient write failure is
retried until it passes, an output over its topic's limit dead-letters its input alone, a
dead letter too large for wa.deadletter loses its value but not its coordinates, and a batch
that raises is run again rather than acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError

from contracts import deadletter
from contracts.deadletter import DeadLettered
from streams.common.faust_app import run_until_done
from streams.common.outputs import KafkaOutputs, RecordingOutputs
from streams.common.records import InputRecord, Output
from streams.common.runner import RetryPolicy, StageRunner

KIB = 1024


def record(offset: int, value: bytes = b"in") -> InputRecord:
    return InputRecord("wa.raw", 0, offset, b"k", value)


def echo(size_for: dict[int, int] | None = None):  # type: ignore[no-untyped-def]
    """A handler writing two outputs per input; ``size_for`` makes an input's second output that large."""

    async def handle(rec: InputRecord) -> list[Output]:
        big = (size_for or {}).get(rec.offset, 3)
        return [Output("wa.messages", b"k", b"a%d" % rec.offset), Output("wa.messages", b"k", b"x" * big)]

    return handle


def letters(written: Sequence[Output]) -> list[DeadLettered]:
    return [DeadLettered.decode(o.value) for o in written if o.topic == deadletter.TOPIC]


async def test_an_output_over_its_topic_limit_dead_letters_its_input_alone() -> None:
    writer = RecordingOutputs(cluster_cap=64 * KIB)
    runner = StageRunner("normalize", echo({2: 200 * KIB}), writer, policy=RetryPolicy(attempts=1))
    await runner.run_batch([record(1), record(2), record(3)])
    assert [o.value for o in writer.written if o.topic == "wa.messages" and o.value.startswith(b"a")] == [b"a1", b"a3"]
    [letter] = letters(writer.written)
    assert (letter.offset, letter.error_type) == (2, "RecordTooLarge")
    assert "wa.messages" in letter.error and "65,536" in letter.error
    assert letter.value == b"in" and not letter.value_omitted
    assert runner.metrics.failed._value.get() == 1  # type: ignore[attr-defined]


async def test_a_dead_letter_too_large_for_its_topic_keeps_coordinates_without_the_value() -> None:
    writer = RecordingOutputs(cluster_cap=64 * KIB)
    runner = StageRunner("normalize", echo({5: 200 * KIB}), writer, policy=RetryPolicy(attempts=1))
    await runner.run_batch([record(4), record(5, b"v" * 100 * KIB)])
    [letter] = letters(writer.written)
    assert (letter.topic, letter.partition, letter.offset) == ("wa.raw", 0, 5)
    assert letter.value_omitted and letter.value_bytes == 100 * KIB and letter.value == b""


async def test_a_failing_handler_with_a_huge_input_is_dead_lettered_without_its_value() -> None:
    async def poison(rec: InputRecord) -> list[Output]:
        raise ValueError("unreadable")

    writer = RecordingOutputs(cluster_cap=64 * KIB)
    await StageRunner("normalize", poison, writer, policy=RetryPolicy(attempts=1)).run_batch(
        [record(7, b"v" * 100 * KIB)]
    )
    [letter] = letters(writer.written)
    assert letter.error_type == "ValueError" and letter.value_omitted


async def test_a_batch_that_raises_is_run_again_not_acknowledged() -> None:
    class Flaky:
        calls = 0

        async def run_batch(self, records: Sequence[InputRecord]) -> None:
            self.calls += 1
            if self.calls < 3:
                raise RuntimeError("bug")

    flaky, waits = Flaky(), []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    await run_until_done(flaky, [record(1)], "normalize", sleep=sleep)  # type: ignore[arg-type]
    assert flaky.calls == 3 and waits == [0.5, 1.0]


# --- KafkaOutputs against a fake producer -------------------------------------------------------


class FakeProducer:
    """Speaks aiokafka's producer API: ``send`` returns a future per record. ``plan`` says, per
    producer instance, which sends fail and how."""

    def __init__(self, world: "World") -> None:
        self.world = world
        self.index = len(world.producers)
        world.producers.append(self)
        self.stopped = False

    async def start(self) -> None:
        if self.world.down_starts > 0:
            self.world.down_starts -= 1
            raise KafkaConnectionError("unreachable")

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        fail = self.world.fail(self.index, value)
        if fail is None:
            self.world.acked.append(value)
            future.set_result(object())
        else:
            future.set_exception(fail)
        return future


class World:
    def __init__(self, *, failing_producers: int = 0, too_large: bytes = b"", down_starts: int = 0) -> None:
        self.producers: list[FakeProducer] = []
        self.acked: list[bytes] = []
        self.failing_producers = failing_producers
        self.too_large = too_large
        self.down_starts = down_starts
        self.batched = True

    def fail(self, producer: int, value: bytes) -> BaseException | None:
        if producer < self.failing_producers:
            return KafkaTimeoutError()
        if self.too_large and value == self.too_large:
            return MessageSizeTooLargeError()
        return None


async def no_sleep(_seconds: float) -> None:
    return None


async def test_kafka_outputs_retry_an_outage_on_fresh_producers_until_every_record_is_acked() -> None:
    world = World(failing_producers=2, down_starts=1)
    writer = KafkaOutputs(lambda: FakeProducer(world), sleep=no_sleep)  # type: ignore[arg-type,return-value]
    groups = [[Output("wa.messages", b"k", b"a"), Output("wa.messages", b"k", b"b")], [Output("wa.messages", b"k", b"c")]]
    assert await writer.write_groups(groups) == {}
    assert sorted(world.acked) == [b"a", b"b", b"c"]
    assert [p.stopped for p in world.producers[:-1]] == [True] * (len(world.producers) - 1)


async def test_kafka_outputs_isolate_the_record_the_broker_refuses_as_too_large() -> None:
    world = World(too_large=b"huge")
    writer = KafkaOutputs(lambda: FakeProducer(world), sleep=no_sleep)  # type: ignore[arg-type,return-value]
    groups = [[Output("wa.x", b"k", b"a")], [Output("wa.x", b"k", b"ok"), Output("wa.x", b"k", b"huge")], [Output("wa.x", b"k", b"c")]]
    refused = await writer.write_groups(groups)
    assert list(refused) == [1] and refused[1].topic == "wa.x"
    assert sorted(world.acked) == [b"a", b"c", b"ok"]
