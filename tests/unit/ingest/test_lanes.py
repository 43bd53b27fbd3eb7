"""A partition lane: one batch at the broker at a time, everything that arrives meanwhile in
the next one, and every caller settled (acknowledged or failed) within its deadline."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from ingest.errors import BrokerUnavailable
from ingest.lanes import PartitionLane, Record


def record(i: int) -> Record:
    return (b"whapi:chan", f"body-{i}".encode(), [("mm-delivery-id", str(i).encode())])


class FakeBroker:
    """Acknowledges each batch when the test releases it; records what it was sent."""

    def __init__(self) -> None:
        self.batches: list[list[Record]] = []
        self.release = asyncio.Event()
        self.fail_with: BaseException | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    async def send(self, records: list[Record], partition: int) -> None:
        assert partition == 3
        self.batches.append(records)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.release.wait()
            if self.fail_with is not None:
                raise self.fail_with
        finally:
            self.in_flight -= 1


async def test_records_arriving_while_a_batch_is_at_the_broker_leave_together_in_the_next() -> None:
    broker = FakeBroker()
    lane = PartitionLane(3, broker.send, timeout=5, linger=0)
    first = lane.add(record(0))
    await asyncio.sleep(0.01)  # batch [0] is now at the broker
    rest = [lane.add(record(i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    assert [len(b) for b in broker.batches] == [1]  # nothing more goes out until [0] is acknowledged

    broker.release.set()
    await asyncio.gather(first, *rest)
    assert [[r[1] for r in b] for b in broker.batches] == [[b"body-0"], [f"body-{i}".encode() for i in range(1, 6)]]
    assert broker.max_in_flight == 1
    await lane.drained()
    assert lane.idle


async def test_a_caller_is_answered_only_after_its_batch_is_acknowledged() -> None:
    broker = FakeBroker()
    lane = PartitionLane(3, broker.send, timeout=5, linger=0)
    acked = lane.add(record(0))
    await asyncio.sleep(0.02)
    assert not acked.done()
    broker.release.set()
    await acked


async def test_linger_gathers_a_burst_into_one_batch() -> None:
    broker = FakeBroker()
    broker.release.set()
    lane = PartitionLane(3, broker.send, timeout=5, linger=0.02)
    first = lane.add(record(0))
    await asyncio.sleep(0.005)
    second = lane.add(record(1))
    await asyncio.gather(first, second)
    assert [len(b) for b in broker.batches] == [2]


async def test_a_broker_error_fails_every_caller_of_the_batch_with_broker_unavailable() -> None:
    broker = FakeBroker()
    broker.fail_with = KafkaConnectionError("gone")
    broker.release.set()
    lane = PartitionLane(3, broker.send, timeout=5, linger=0)
    futures = [lane.add(record(i)) for i in range(3)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, BrokerUnavailable) for r in results)
    assert "KafkaConnectionError" in results[0].reason
    assert len({id(r) for r in results}) == 3  # one exception object per caller

    broker.fail_with = None  # the lane keeps working once the broker is back
    await lane.add(record(9))


async def test_no_caller_waits_past_its_deadline_even_behind_a_stuck_batch() -> None:
    broker = FakeBroker()  # never releases
    lane = PartitionLane(3, broker.send, timeout=0.2, linger=0)
    stuck = lane.add(record(0))
    await asyncio.sleep(0.1)
    behind = lane.add(record(1))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BrokerUnavailable, match="TimeoutError"):
        await stuck
    with pytest.raises(BrokerUnavailable):
        await behind
    # `behind` arrived 0.1 s after `stuck`, so its own 0.2 s ran out 0.1 s after `stuck`'s
    assert loop.time() - started < 0.35


async def test_a_caller_that_gives_up_does_not_disturb_the_others() -> None:
    broker = FakeBroker()
    lane = PartitionLane(3, broker.send, timeout=5, linger=0)
    leaving = lane.add(record(0))
    staying = lane.add(record(1))
    await asyncio.sleep(0.01)
    leaving.cancel()
    broker.release.set()
    await staying
    assert [len(b) for b in broker.batches] == [2]  # its record was still written


async def test_a_bug_in_sending_reaches_the_callers_as_itself() -> None:
    async def broken(records: list[Record], partition: int) -> None:
        raise ValueError("bug")

    lane = PartitionLane(3, broken, timeout=5, linger=0)
    with pytest.raises(ValueError, match="bug"):
        await lane.add(record(0))
