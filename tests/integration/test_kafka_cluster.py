"""On a 3-broker cluster (replication 3, min.insync.replicas 2, unclean election off), the
project's producer (acks=all, idempotent) loses no acknowledged record when the leader of
the partition it writes is SIGKILLed mid-run; the killed broker, started again, rejoins
the in-sync replicas."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from contracts.settings import Settings
from contracts.topics import RAW
from runtime.kafka import connection_config, end_offsets, make_producer, read_range
from msgmem.localstack.kafka_cluster import LocalKafkaCluster
from msgmem.localstack.stack import Stack, start_stack
from tests.chaos.harness import LeaderKill, run_chaos
from tests.chaos.workload import Workload
from tests.waiting import eventually

pytestmark = pytest.mark.integration

RECORDS = 2_000
RATE = 250  # records per second: 8 s of steady writes without the outage
KILL_AT = 600  # the leader dies 2.4 s in, with 1,400 records still to write
PARTITION = 0
SEND_DEADLINE = 60.0  # a record not acknowledged by then fails the test


@pytest.fixture(scope="module")
def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of this module's own with three brokers; the session's single broker is left alone.
    Failing to start fails the tests."""
    running = start_stack(tmp_path_factory.mktemp("cluster"), brokers=3)
    try:
        yield running
    finally:
        running.stop()


async def topic_configs(settings: Settings, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    return {entry[0]: entry[1] for entry in described[0].resources[0][4]}


async def test_cluster_stack_replicates_topics_three_ways(cluster_stack: Stack) -> None:
    settings, cluster = cluster_stack.settings, cluster_stack.kafka
    assert isinstance(cluster, LocalKafkaCluster)
    assert settings.kafka_replication_factor == 3
    assert len(settings.kafka_bootstrap_servers.split(",")) == 3
    configs = await topic_configs(settings, RAW.name)
    assert configs["min.insync.replicas"] == "2"  # the broker default, inherited
    assert configs["unclean.leader.election.enable"] == "false"
    state = await cluster.partition_state(RAW.name, PARTITION)
    assert sorted(state.replicas) == [1, 2, 3] and sorted(state.isr) == [1, 2, 3]


async def test_killing_the_partition_leader_loses_no_acknowledged_record(cluster_stack: Stack) -> None:
    settings, cluster = cluster_stack.settings, cluster_stack.kafka
    assert isinstance(cluster, LocalKafkaCluster)
    tp = TopicPartition(RAW.name, PARTITION)
    start = (await end_offsets(settings, RAW.name))[tp]
    victim = await cluster.leader_of(RAW.name, PARTITION)
    assert victim in cluster.nodes

    run = uuid.uuid4().hex[:8]
    acked: dict[int, int] = {}  # record number -> offset the broker acknowledged
    failed_sends: list[str] = []
    acked_before_kill = -1
    producer = make_producer(settings)

    async def deliver(n: int) -> None:
        """Send until acknowledged, as a client would: a send that raises is sent again."""
        value = f"{run}:{n}".encode()
        while True:
            try:
                meta = await (await producer.send(RAW.name, value, key=b"cluster-test", partition=PARTITION))
                acked[n] = meta.offset
                return
            except KafkaError as exc:
                failed_sends.append(type(exc).__name__)
                assert time.monotonic() < deadline, f"record {n} unacknowledged after {SEND_DEADLINE}s: {exc!r}"
                await asyncio.sleep(0.1)

    await producer.start()
    t0 = time.monotonic()
    deadline, killed_at = t0 + SEND_DEADLINE, t0
    try:
        sends = []
        for n in range(RECORDS):
            await asyncio.sleep(max(0.0, t0 + n / RATE - time.monotonic()))
            if n == KILL_AT:
                acked_before_kill = len(acked)
                cluster.kill(victim)
                killed_at = time.monotonic()
            sends.append(asyncio.create_task(deliver(n)))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    produced_in = time.monotonic() - t0
    print(
        f"\n{RECORDS} records in {produced_in:.1f}s, leader kafka-{victim} killed at record {KILL_AT} "
        f"({acked_before_kill} acknowledged then); last acknowledgement {produced_in - (killed_at - t0):.1f}s "
        f"after the kill; {len(failed_sends)} failed sends re-sent: {sorted(set(failed_sends))}"
    )
    assert 0 < acked_before_kill < RECORDS, "the leader must die while records are being written"
    assert len(acked) == RECORDS

    after = await cluster.partition_state(RAW.name, PARTITION)
    assert after.leader not in (victim, -1) and victim not in after.isr, after
    assert len(after.isr) == 2, after  # min.insync.replicas: writes went on with two

    end = (await end_offsets(settings, RAW.name))[tp]
    records = {r.offset: r.value for r in await read_range(settings, RAW.name, {tp: start}, {tp: end})}
    lost = [n for n, offset in acked.items() if records.get(offset) != f"{run}:{n}".encode()]
    assert lost == [], f"{len(lost)} acknowledged records are not at their offsets, e.g. {lost[:10]}"
    values = [v for v in records.values() if v is not None and v.startswith(run.encode())]
    assert set(values) == {f"{run}:{n}".encode() for n in range(RECORDS)}
    print(f"read back {len(values)} records, {len(values) - RECORDS} duplicates from re-sent records")

    t_restart = time.monotonic()
    cluster.restart(victim)  # blocks the loop until the node is up; no client is open now

    async def isr_is_whole() -> bool:
        return len((await cluster.partition_state(RAW.name, PARTITION)).isr) == 3

    await eventually(isr_is_whole, timeout=30)
    print(f"kafka-{victim} back in the ISR {time.monotonic() - t_restart:.1f}s after its restart")


@pytest.mark.timeout(600)
async def test_the_fault_suite_loses_nothing_while_partition_leaders_die(cluster_stack: Stack, tmp_path: Path) -> None:
    """The fault suite on the cluster: 2,000 deliveries through real ingest, normalize and
    projector processes while the leader of the wa.raw partition the deliveries go to dies,
    and later the leader of wa.messages partition 0 (each started again 8 s later). Every
    message answered 200 is exactly one row with its text."""
    workload = Workload(run=uuid.uuid4().hex[:8], messages=2_000)
    faults = [LeaderKill(RAW.name, at=0.2, down_s=8), LeaderKill("wa.messages", at=0.55, down_s=8)]
    report = await run_chaos(cluster_stack, workload, rate=100, faults=faults, log_dir=tmp_path)
    print("\n" + "\n".join(report.lines()))
    assert report.accepted == workload.messages
    assert report.lost == [] and report.duplicated == 0
    assert report.rows == report.accepted and report.checksum_ok
    assert report.dead_letters == 0
    assert all(o.recovery_s is not None for o in report.outcomes), report.outcomes
