"""At least once through a real Faust stage: a batch that raises half-way through its writes,
and a worker SIGKILLed mid-stream, lose no input. Each input is acknowledged only after its
outputs are, so whatever was not finished is read again (duplicates allowed, losses not)."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.settings import Settings
from runtime.kafka import connection_config, end_offsets, make_consumer, make_producer, read_range
from msgmem.localstack.processes import Child, env_with, file_sink
from tests.waiting import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
READY = r"\[\^Worker\]: Ready"
INPUTS = 600


async def create_topics(settings: Settings, *names: str) -> None:
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(settings.topic(name), num_partitions=2, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()


def faulty_stage(settings: Settings, tmp: Path, stage: str, source: str, target: str, run: int) -> Child:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix, "KAFKA_GROUP_PREFIX": settings.kafka_group_prefix,
        "STATE_DIR": str(tmp / "state"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
        "FAULTY_STAGE": stage, "FAULTY_INPUT": source, "FAULTY_OUTPUT": target, "FAULTY_FAIL_EVERY": "3",
    }  # fmt: skip
    child = Child(
        f"faulty-{run}", [sys.executable, "-m", "tests.fakes.faulty_stage"], ready_pattern=READY,
        env=env_with(env), cwd=tmp, sink=file_sink(tmp / f"faulty-{run}.log"),
    )
    return child.start()


async def outputs(settings: Settings, target: str) -> set[bytes]:
    return {r.value for r in await read_range(settings, target, {}, await end_offsets(settings, target))}


async def committed(settings: Settings, group: str, topic: str) -> dict[int, int]:
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in (0, 1)]
        return {tp.partition: (await consumer.committed(tp)) or 0 for tp in tps}
    finally:
        await consumer.stop()


async def test_a_batch_that_raises_mid_write_and_a_sigkilled_worker_lose_no_input(
    settings: Settings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    stage, source, target = f"faulty-{run}", f"test.delivery.in.{run}", f"test.delivery.out.{run}"
    await create_topics(settings, source, target)
    expected = {b"input-%04d" % i for i in range(INPUTS)}
    producer = make_producer(settings)
    await producer.start()
    try:
        for i, value in enumerate(sorted(expected)):
            await producer.send(source, value, key=b"chat-%d" % (i % 7))
        await producer.flush()
    finally:
        await producer.stop()

    first = faulty_stage(settings, tmp_path, stage, source, target, 1)
    try:
        first.wait_ready(90)
        await eventually(lambda: _at_least(settings, target, INPUTS // 4), timeout=60)
        os.kill(first.pid, signal.SIGKILL)  # type: ignore[arg-type]
    finally:
        first.stop()
    log = (tmp_path / "faulty-1.log").read_text()
    assert "injected fault after a partial write" in log  # the fault really struck before the kill

    second = faulty_stage(settings, tmp_path, stage, source, target, 2)
    try:
        second.wait_ready(90)
        written = await eventually(lambda: _all_of(settings, target, expected), timeout=90)
        assert written >= expected
        ends = {tp.partition: o for tp, o in (await end_offsets(settings, source)).items()}
        await eventually(lambda: _equal(committed(settings, settings.consumer_group(stage), source), ends), timeout=30)
    finally:
        second.stop()


async def _at_least(settings: Settings, target: str, n: int) -> bool:
    return len(await outputs(settings, target)) >= n


async def _all_of(settings: Settings, target: str, expected: set[bytes]) -> set[bytes] | None:
    got = await outputs(settings, target)
    return got if expected <= got else None


async def _equal(pending, ends: dict[int, int]) -> bool:  # type: ignore[no-untyped-def]
    return await pending == ends
