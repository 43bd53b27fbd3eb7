"""A local Apache Kafka cluster: N combined broker+controller KRaft nodes (3 by default).

What it is for: proving on one machine the durability settings production relies on.

- replication factor 3 for every topic (``default.replication.factor``; ``ensure_topics``
  asks for ``KAFKA_REPLICATION_FACTOR=3`` explicitly);
- ``min.insync.replicas=2``: an ``acks=all`` write is acknowledged only once two replicas
  have it, so losing any one broker loses no acknowledged record, and writes go on;
- producers with ``acks=all`` and idempotence (``runtime.kafka.make_producer``): a retried
  batch is not written twice, and a send that fails is safe to send again;
- ``unclean.leader.election.enable=false``: a replica that fell out of sync never becomes
  leader, which would silently truncate acknowledged records.

``min.insync.replicas`` is set broker-wide here, and topics created by ``ensure_topics``
carry no override, so they inherit 2. A production cluster must have the same broker
default (Apache Kafka's own default is 1) or the topics need the override.

Every node has its own free ports on 127.0.0.1, its own data directory and its log lines
prefixed ``[kafka-<id>]``; all share the static ``controller.quorum.voters`` and one
cluster id. A node can be SIGKILLed (:meth:`LocalKafkaCluster.kill`) and started again
on the same ports and data (:meth:`LocalKafkaCluster.restart`).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from msgmem.localstack.kafka import LocalKafka, new_cluster_id
from msgmem.localstack.processes import LineSink, free_port, stdout_sink


@dataclass(frozen=True)
class PartitionState:
    """One partition as a broker's metadata describes it (-1: no leader)."""

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class LocalKafkaCluster:
    def __init__(
        self, libs: Path, root: Path, *, brokers: int = 3, heap: str = "384m", sink: LineSink = stdout_sink,
        replication: int | None = None, min_insync: int | None = None,
    ) -> None:
        """``brokers`` nodes under ``root/kafka-<id>``. Replication defaults to
        min(brokers, 3) and ``min_insync`` to one less (at least 1). 384 MiB of heap per
        node keeps three of them, Postgres and the services within a small machine."""
        if brokers < 1:
            raise ValueError("a cluster needs at least one broker")
        self.replication = replication or min(brokers, 3)
        self.min_insync = min_insync or max(1, self.replication - 1)
        if not 1 <= self.min_insync <= self.replication <= brokers:
            raise ValueError(f"need 1 <= min_insync ({self.min_insync}) <= replication ({self.replication}) <= brokers")
        ports = {node_id: (free_port(), free_port()) for node_id in range(1, brokers + 1)}
        voters = ",".join(f"{node_id}@127.0.0.1:{controller}" for node_id, (_, controller) in ports.items())
        cluster_id = new_cluster_id()
        self.nodes: dict[int, LocalKafka] = {
            node_id: LocalKafka(
                libs, root / f"kafka-{node_id}", port, controller, heap=heap, sink=sink, name=f"kafka-{node_id}",
                node_id=node_id, voters=voters, replication=self.replication, min_insync=self.min_insync,
                cluster_id=cluster_id,
            )
            for node_id, (port, controller) in ports.items()
        }

    @property
    def bootstrap_servers(self) -> str:
        """Every node, comma-separated: clients reach the cluster through whichever is up."""
        return ",".join(node.bootstrap_servers for node in self.nodes.values())

    def _each(self, action: str) -> None:
        """Run ``action`` on every node at once: formatting storage is a JVM each, and a
        clean stop waits on the quorum, which needs the other nodes still up."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            for future in [pool.submit(getattr(node, action)) for node in self.nodes.values()]:
                future.result()

    def start(self) -> "LocalKafkaCluster":
        """Format every node's storage (in parallel), then start them all. Brokers are
        started from the calling thread, never a pool's: a child started from a thread gets
        its parent-death signal when that thread ends."""
        self._each("prepare")
        for node in self.nodes.values():
            node.start()
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Every node has started (registered with the quorum and unfenced)."""
        deadline = time.monotonic() + timeout
        for node in self.nodes.values():
            node.wait_ready(max(0.1, deadline - time.monotonic()))

    def stop(self) -> None:
        self._each("stop")

    def kill(self, node_id: int) -> None:
        """SIGKILL one node."""
        self.nodes[node_id].kill()

    def restart(self, node_id: int, timeout: float = 90.0) -> None:
        """Start a stopped or killed node again on its ports and data; return once it is up.
        As with :meth:`start`, call it from the thread that will outlive the node."""
        node = self.nodes[node_id]
        if node.running():
            raise RuntimeError(f"kafka-{node_id} is still running")
        node.start().wait_ready(timeout)

    async def _metadata(self, node_id: int, topics: list[str]) -> list[dict[str, Any]]:
        """``topics`` as node ``node_id`` describes them, asked of that node alone."""
        client = AIOKafkaClient(bootstrap_servers=self.nodes[node_id].bootstrap_servers, request_timeout_ms=5000)
        try:
            await client.bootstrap()
            response = await client.send(node_id, MetadataRequest(topics, allow_auto_topic_creation=False))
        finally:
            await client.close()
        return response.to_object()["topics"]

    async def partition_state(self, topic: str, partition: int) -> PartitionState:
        """Leader, replicas and in-sync replicas of one partition, from the first running
        node that answers (each node's metadata trails the controller by moments)."""
        failures: list[str] = []
        for node_id, node in self.nodes.items():
            if not node.running():
                continue
            try:
                [described] = await self._metadata(node_id, [topic])
            except KafkaError as exc:
                failures.append(f"kafka-{node_id}: {exc!r}")
                continue
            if described["error_code"]:
                failures.append(f"kafka-{node_id}: topic {topic!r} error {described['error_code']}")
                continue
            for p in described["partitions"]:
                if p["partition"] == partition:
                    return PartitionState(topic, partition, p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
            raise KeyError(f"{topic!r} has no partition {partition}")
        raise KafkaError(f"no running node described {topic}[{partition}]: {'; '.join(failures) or 'none running'}")

    async def leader_of(self, topic: str, partition: int) -> int:
        """The node id leading ``topic``'s ``partition`` (-1 while it has none)."""
        return (await self.partition_state(topic, partition)).leader

    async def wait_for_topics(self, topics: list[str], timeout: float = 30.0) -> None:
        """Until every running node knows every partition of ``topics`` with a leader and all
        its replicas in sync. A topic is created by the controller and reaches each broker's
        metadata moments later: a client asking another broker meanwhile hears "unknown topic"."""
        deadline = time.monotonic() + timeout
        while True:
            pending: list[str] = []
            for node_id, node in self.nodes.items():
                if not node.running():
                    continue
                try:
                    described = await self._metadata(node_id, topics)
                except KafkaError as exc:
                    pending.append(f"kafka-{node_id}: {exc!r}")
                    continue
                for t in described:
                    if t["error_code"] or not t["partitions"]:
                        pending.append(f"kafka-{node_id}: {t['topic']} error {t['error_code']}")
                    pending.extend(
                        f"kafka-{node_id}: {t['topic']}[{p['partition']}] leader {p['leader']} isr {p['isr']}"
                        for p in t["partitions"]
                        if p["leader"] < 0 or len(p["isr"]) < len(p["replicas"])
                    )
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not ready after {timeout:.0f}s: {'; '.join(pending[:10])}")
            await asyncio.sleep(0.2)
