"""An Apache Kafka node in KRaft mode, from Maven Central jars cached once: a single-node
broker by default, or one node of a :mod:`~msgmem.localstack.kafka_cluster`.

The jars are resolved with Maven (`mvn dependency:copy-dependencies` on a small pom) into
``<cache>/kafka-<version>/libs`` the first time, under a file lock so that concurrent
starts fetch once. Afterwards the broker starts in a few seconds with no network.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from collections.abc import Iterator

from msgmem.localstack.processes import Child, ChildFailed, LineSink, stdout_sink

_COMPLETE = ".complete"


class KafkaFetchError(RuntimeError):
    pass


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def kafka_libs(cache_dir: Path, version: str, *, log: LineSink = stdout_sink) -> Path:
    """The directory of broker jars for ``version``, fetching them through Maven if not cached."""
    target = cache_dir / f"kafka-{version}"
    libs = target / "libs"
    if (target / _COMPLETE).exists():
        return libs
    if shutil.which("mvn") is None:
        raise KafkaFetchError("Maven (mvn) is needed once to fetch the Kafka jars; install Maven and Java 17+")
    with _file_lock(cache_dir / f"kafka-{version}.lock"):
        if (target / _COMPLETE).exists():
            return libs
        log(f"[kafka] fetching Apache Kafka {version} jars from Maven Central (once)")
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            work = Path(tmp)
            pom = resources.files("msgmem.localstack").joinpath("kafka-pom.xml").read_text()
            (work / "pom.xml").write_text(pom.replace("KAFKA_VERSION", version))
            result = subprocess.run(
                ["mvn", "-q", "-B", "dependency:copy-dependencies", "-DincludeScope=runtime",
                 f"-DoutputDirectory={work / 'libs'}"],
                cwd=work, capture_output=True, text=True, stdin=subprocess.DEVNULL,
            )
            if result.returncode != 0:
                raise KafkaFetchError(f"mvn could not fetch Kafka {version}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            (work / "libs").rename(libs)
            (target / _COMPLETE).write_text(version)
    return libs


def new_cluster_id() -> str:
    """A KRaft cluster id (base64 of 16 bytes). Never starting with '-': the storage tool
    would read it as an option."""
    while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))[0] == "-":
        pass
    return cid


def server_properties(
    data_dir: Path, port: int, controller_port: int, cpus: int | None = None, *,
    node_id: int = 1, voters: str | None = None, replication: int = 1, min_insync: int = 1,
    max_message_bytes: int = 22020096,
) -> str:
    """A dev/test broker: instant group joins, no automatic topic creation, and request
    threads sized to the machine. Kafka's defaults (3 network and 8 I/O threads) suit a
    server; on 2 cores, shared with the services, each request then hops between more
    threads than there are cores: 1 and 2 gave ingest 12% more deliveries/s with less CPU
    in every process.

    Alone (the defaults) it is its own single voter with one replica of everything. In a
    cluster every node gets its ``node_id``, the same ``voters``
    (``"1@host:port,2@host:port,..."``) and the replication settings, which are also the
    broker-wide defaults of topics created without their own (``min.insync.replicas``).
    ``max_message_bytes`` lowers the broker's record limit, as a hosted cluster's (1 MiB)."""
    cpus = cpus or os.cpu_count() or 2
    voters = voters or f"{node_id}@127.0.0.1:{controller_port}"
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data_dir / 'logs'}",
            "num.partitions=1",
            f"default.replication.factor={replication}",
            f"min.insync.replicas={min_insync}",
            f"offsets.topic.replication.factor={replication}",
            "offsets.topic.num.partitions=6",
            f"transaction.state.log.replication.factor={replication}",
            f"transaction.state.log.min.isr={min_insync}",
            f"share.coordinator.state.topic.replication.factor={replication}",
            f"share.coordinator.state.topic.min.isr={min_insync}",
            "unclean.leader.election.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            f"num.network.threads={min(3, max(1, cpus // 2))}",
            f"num.io.threads={min(8, max(2, cpus))}",
            f"message.max.bytes={max_message_bytes}",
            "replica.fetch.max.bytes=22020096",
            "socket.request.max.bytes=104857600",
            "log.retention.hours=-1",
            "",
        ]
    )


class LocalKafka:
    """One KRaft node (broker and controller in one JVM). Alone by default; a
    :class:`~msgmem.localstack.kafka_cluster.LocalKafkaCluster` gives each of its nodes a
    ``node_id``, the shared ``voters`` and ``cluster_id``, and a ``name`` for its log lines."""

    def __init__(
        self, libs: Path, data_dir: Path, port: int, controller_port: int, *, heap: str = "768m",
        sink: LineSink = stdout_sink, name: str = "kafka", node_id: int = 1, voters: str | None = None,
        replication: int = 1, min_insync: int = 1, cluster_id: str | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.libs = libs
        self.data_dir = data_dir
        self.port = port
        self.controller_port = controller_port
        self.name = name
        self.node_id = node_id
        self._heap = heap
        self._sink = sink
        self._voters = voters
        self._replication = replication
        self._min_insync = min_insync
        self._cluster_id = cluster_id
        self.child: Child | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, main: str, *args: str) -> list[str]:
        """The JVM command line. ``TieredStopAtLevel=1`` keeps the JIT to its quick tier (C1):
        on a 2-core machine the optimising compiler (C2) was still compiling the broker's
        request path minutes into a run, and took a third of the broker's CPU doing it
        (measured under ingest load: 38 -> 25 µs of broker CPU per webhook with C1 alone).
        A dev/test broker lives for minutes, not months, so the quick tier is the better
        trade here; a production broker keeps the JVM's defaults."""
        log_cfg = self.data_dir / "log4j2.yaml"
        return [
            "java", f"-Xms128m", f"-Xmx{self._heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
            "-Xshare:auto", "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log_cfg}",
            "-cp", f"{self.libs}/*", main, *args,
        ]

    def prepare(self) -> Path:
        """Write the configuration (ports may change between runs) and format storage once.
        Safe to run on a worker thread (``start`` runs it again, and then it only writes files)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        props.write_text(
            server_properties(
                self.data_dir, self.port, self.controller_port, node_id=self.node_id, voters=self._voters,
                replication=self._replication, min_insync=self._min_insync,
                **({"max_message_bytes": self.max_message_bytes} if self.max_message_bytes else {}),
            )
        )
        log_cfg = resources.files("msgmem.localstack").joinpath("kafka-log4j2.yaml").read_text()
        (self.data_dir / "log4j2.yaml").write_text(log_cfg)
        if not (self.data_dir / "logs" / "meta.properties").exists():
            cluster_id = self._cluster_id or new_cluster_id()
            result = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)),
                capture_output=True, text=True, stdin=subprocess.DEVNULL,
            )
            if result.returncode != 0:
                raise ChildFailed(f"{self.name} storage format failed:\n{result.stdout}{result.stderr}")
        return props

    def start(self) -> "LocalKafka":
        """Start the broker; again after :meth:`stop` or :meth:`kill`, on the same ports and data.
        Call it from a thread that outlives the broker (the main thread): the child's
        parent-death signal fires when the thread that started it ends."""
        props = self.prepare()
        self.child = Child(
            self.name, self._java("kafka.Kafka", str(props)),
            ready_pattern=r"Kafka Server started", stop_signal=signal.SIGTERM, sink=self._sink,
        ).start()
        return self

    def running(self) -> bool:
        return self.child is not None and self.child.running()

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.child is not None, "start() first"
        self.child.wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL: no controlled shutdown, no flush; a crash as the rest of the cluster sees it."""
        if self.child is not None:
            self.child.kill()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=30)
