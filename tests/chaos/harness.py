"""The fault suite's machinery: the pipeline as real processes, a provider that posts at a
steady rate and retries what was not answered 200, the faults, and the reconciliation.

Used by ``bench/chaos.py`` (N = 20,000, every fault) and ``tests/integration/test_chaos.py``
(a smaller N, the faults CI must survive). Everything runs against a stack of its own
(``start_stack``), so killing its broker or its Postgres disturbs no other test.

Recovery is measured per fault as the time from the fault (a kill) or from the end of an
outage (the broker or Postgres ready again) until the affected consumers move again: a
Faust stage's committed offsets, a projector's stored offsets (``projection_offsets``), all
above what they were at that moment. The provider keeps posting throughout, so there is
always new work to move on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from contracts import deadletter
from contracts.deadletter import DeadLettered
from contracts.settings import Settings
from contracts.topics import RAW
from runtime.kafka import connection_config, end_offsets, partitions_of, read_range
from msgmem.localstack.kafka import LocalKafka
from msgmem.localstack.kafka_cluster import LocalKafkaCluster
from msgmem.localstack.processes import Child, env_with, file_sink, free_port
from msgmem.localstack.stack import Stack
from msgmem.services import Service, by_name
from tests.chaos.workload import CHECKSUM_SQL, Workload, checksum

WHAPI_TOKEN = "chaos-whapi-token-0123456789abcdef"
T = TypeVar("T")


# --------------------------------------------------------------------------- processes


class Pipeline:
    """The services under test as child processes, any number of instances each."""

    def __init__(
        self, settings: Settings, log_dir: Path, extra_env: dict[str, str] | None = None, *,
        static_membership: bool = True,
    ) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.ingest_port = free_port()
        self._extra = extra_env or {}
        self.instances: dict[str, list[Child]] = {}
        self._slots: dict[int, int] = {}
        self._started = 0
        self.static_membership = static_membership

    def _child(self, service: Service, slot: int) -> Child:
        self._started += 1
        n = self._started
        env = service.env(self.settings) | self._extra | {
            "STATE_DIR": str(self.log_dir / "state" / f"{service.name}-{n}"),
            "ENVIRONMENT": "test", "WHAPI_TOKEN": WHAPI_TOKEN, "INGEST_PORT": str(self.ingest_port),
        }  # fmt: skip
        if self.static_membership:  # a restart takes the slot (and the group instance id) it replaces
            env["KAFKA_GROUP_INSTANCE_ID"] = f"{service.name}-{slot}"
        return Child(
            f"{service.name}-{n}", service.argv(), ready_pattern=service.ready_pattern, env=env_with(env),
            sink=file_sink(self.log_dir / f"{service.name}.log"),
        )

    def start(self, name: str) -> Child:
        """Start one more instance of ``name`` (from the thread that runs the event loop:
        a child dies with the thread that started it), in the lowest slot no live instance holds."""
        running = self.instances.setdefault(name, [])
        taken = {self._slots[id(c)] for c in running}
        slot = next(k for k in range(len(running) + 1) if k not in taken)
        child = self._child(by_name(name), slot).start()
        self._slots[id(child)] = slot
        running.append(child)
        return child

    async def start_ready(self, name: str, timeout: float = 90.0) -> Child:
        child = self.start(name)
        await wait_ready(child, timeout)
        return child

    def kill(self, name: str, index: int = -1) -> Child:
        """SIGKILL one instance (the newest by default) and forget it."""
        child = self.instances[name].pop(index)
        child.kill()
        return child

    def stop_all(self) -> None:
        for name in reversed(list(self.instances)):
            for child in self.instances[name]:
                child.stop(timeout=15)
        self.instances.clear()


async def wait_ready(child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not child.is_ready():
        if not child.running():
            raise RuntimeError(f"{child.name} exited with code {child.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} was not ready after {timeout:.0f}s")
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- the provider


@dataclass
class Provider:
    """Posts the workload's deliveries at ``rate`` per second to ingest and, as a provider
    does, posts again what was not answered 200 (a 503, a timeout, a refused connection)
    with backoff, until it is."""

    url: str
    workload: Workload
    rate: float
    accepted: set[str] = field(default_factory=set)  #: message ids answered 200 at least once
    answers: dict[int, int] = field(default_factory=dict)  #: status (0: no answer) -> count
    scheduled: int = 0  #: deliveries whose time has come
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        deliveries = self.workload.deliveries()
        headers = {"authorization": f"Bearer {WHAPI_TOKEN}", "content-type": "application/json"}
        limits = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=limits, timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def deliver(body: bytes, message_id: str) -> None:
                delay = 0.5
                while True:
                    try:
                        async with session.post(f"{self.url}/webhooks/whapi", data=body, headers=headers) as r:
                            status = r.status
                            await r.read()
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        status = 0
                    self.answers[status] = self.answers.get(status, 0) + 1
                    if status == 200:
                        self.accepted.add(message_id)
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

            t0 = time.monotonic()
            tasks = []
            for d in deliveries:
                await asyncio.sleep(max(0.0, t0 + d.seq / self.rate - time.monotonic()))
                self.scheduled = d.seq + 1
                tasks.append(asyncio.create_task(deliver(d.body, self.workload.message_id(d.message))))
            await asyncio.gather(*tasks)
        self.done.set()

    @property
    def total(self) -> int:
        return len(self.workload.deliveries())


# --------------------------------------------------------------------------- progress probes


class Progress:
    """How far each consumer has got: committed offsets of a Faust stage's group, stored
    offsets of a projector. Reads fail quietly (None) while the broker or Postgres is down."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def of(self, name: str) -> dict[tuple[str, int], int] | None:
        """Where ``name`` stands on each input partition (its next offset)."""
        service = by_name(name)
        try:
            if service.projection is not None:
                conn = await asyncpg.connect(self.stack.settings.database_url, timeout=3)
                try:
                    rows = await conn.fetch(
                        "select topic, partition, next_offset from projection_offsets where projection = $1",
                        service.projection,
                    )
                finally:
                    await conn.close()
                return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            assert service.group is not None, f"{name} is not a consumer"
            admin = AIOKafkaAdminClient(**connection_config(self.stack.settings) | {"request_timeout_ms": 3000})
            await asyncio.wait_for(admin.start(), 5)
            try:
                offsets = await asyncio.wait_for(admin.list_consumer_group_offsets(service.group), 5)
            finally:
                await admin.close()
            return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        except Exception:  # noqa: BLE001 - a probe during an outage has no answer yet
            return None

    async def _ends(self, name: str) -> dict[tuple[str, int], int] | None:
        try:
            ends: dict[tuple[str, int], int] = {}
            for topic in by_name(name).inputs:
                found = await asyncio.wait_for(end_offsets(self.stack.settings, topic), 5)
                ends |= {(tp.topic, tp.partition): offset for tp, offset in found.items()}
            return ends
        except Exception:  # noqa: BLE001 - as above
            return None

    async def _answer(self, probe: Callable[[], Awaitable[T | None]], since: float, timeout: float) -> T | None:
        while time.monotonic() - since < timeout:
            if (value := await probe()) is not None:
                return value
            await asyncio.sleep(0.25)
        return None

    async def members(self, name: str) -> tuple[str, frozenset[str]] | None:
        """The group's state and member ids (None while the broker does not answer)."""
        group = by_name(name).group
        assert group is not None, f"{name} is not a consumer"
        try:
            admin = AIOKafkaAdminClient(**connection_config(self.stack.settings) | {"request_timeout_ms": 3000})
            await asyncio.wait_for(admin.start(), 5)
            try:
                [response] = await asyncio.wait_for(admin.describe_consumer_groups([group]), 5)
            finally:
                await admin.close()
        except Exception:  # noqa: BLE001 - no answer during an outage
            return None
        _error, _group, state, _ptype, _protocol, members, *_ = response.groups[0]
        return state, frozenset(m[0] for m in members)

    async def rejoined(self, name: str, before: frozenset[str], since: float, timeout: float) -> float | None:
        """Seconds from ``since`` until the group is stable again without the members it had
        (``before``): for a stage with nothing to consume, the moment it could consume again."""
        while time.monotonic() - since < timeout:
            now = await self.members(name)
            if now is not None and now[0] == "Stable" and now[1] and not (now[1] & before):
                return time.monotonic() - since
            await asyncio.sleep(0.25)
        return None

    async def moved(self, names: Sequence[str], since: float, timeout: float) -> float | None:
        """Seconds from ``since`` until each of ``names`` has moved on every input partition
        that had work waiting when this was called: a partition left behind by a dead
        worker counts until its new owner moves it (None: not within ``timeout``)."""
        waiting: dict[str, dict[tuple[str, int], int]] = {}
        for name in names:
            position = await self._answer(lambda: self.of(name), since, timeout)
            ends = await self._answer(lambda: self._ends(name), since, timeout)
            if position is None or ends is None:
                return None
            waiting[name] = {tp: position.get(tp, 0) for tp, end in ends.items() if end > position.get(tp, 0)}
        while any(waiting.values()):
            if time.monotonic() - since > timeout:
                return None
            for name, pending in waiting.items():
                if pending and (now := await self.of(name)) is not None:
                    waiting[name] = {tp: at for tp, at in pending.items() if now.get(tp, 0) <= at}
            if any(waiting.values()):
                await asyncio.sleep(0.25)
        return time.monotonic() - since


# --------------------------------------------------------------------------- faults


@dataclass
class Context:
    stack: Stack
    pipeline: Pipeline
    provider: Provider
    progress: Progress
    say: Callable[[str], None]
    recovery_timeout: float = 120.0


@dataclass
class Outcome:
    fault: str
    recovery_s: float | None
    detail: str = ""


class Fault:
    """One injected failure. ``at`` is the share of the schedule posted when it strikes."""

    at: float = 0.0

    @property
    def name(self) -> str:
        raise NotImplementedError

    async def inject(self, ctx: Context) -> Outcome:
        raise NotImplementedError


@dataclass
class KillService(Fault):
    """SIGKILL one instance of a service, started again after ``restart_after`` seconds
    (``msgmem dev`` restarts its first crash after 1 s). Recovery: from the kill until
    the service's consumers move again."""

    service: str
    at: float = 0.0
    restart_after: float = 1.0
    #: For a stage the workload gives nothing to consume (transcribe with text only): measure
    #: until its group is stable again without the killed member, not until offsets move.
    idle: bool = False

    @property
    def name(self) -> str:
        return f"SIGKILL {self.service}" + (" (idle: group rejoined)" if self.idle else "")

    async def inject(self, ctx: Context) -> Outcome:
        before = await ctx.progress.members(self.service) if self.idle else None
        t_kill = time.monotonic()
        ctx.pipeline.kill(self.service)
        if before is not None:
            watch = asyncio.create_task(ctx.progress.rejoined(self.service, before[1], t_kill, ctx.recovery_timeout))
        else:
            watch = asyncio.create_task(ctx.progress.moved([self.service], t_kill, ctx.recovery_timeout))
        await asyncio.sleep(self.restart_after)
        await ctx.pipeline.start_ready(self.service)
        return Outcome(self.name, await watch)


@dataclass
class BrokerOutage(Fault):
    """A broker kill while normalize works through a backlog: normalize is stopped for
    ``backlog_s`` while ingest goes on accepting, then started again, and once it is
    catching up the broker is SIGKILLed for ``outage_s``. Recovery: from the broker's
    return until normalize and the projector both move again."""

    at: float = 0.0
    backlog_s: float = 5.0
    outage_s: float = 15.0

    @property
    def name(self) -> str:
        return f"broker killed {self.outage_s:.0f}s during a backlog"

    async def inject(self, ctx: Context) -> Outcome:
        ctx.pipeline.kill("normalize")
        await asyncio.sleep(self.backlog_s)
        await ctx.pipeline.start_ready("normalize")
        await ctx.progress.moved(["normalize"], time.monotonic(), ctx.recovery_timeout)  # catching up now
        kafka = ctx.stack.kafka
        assert isinstance(kafka, LocalKafka), "one broker; a cluster loses leaders instead"
        kafka.kill()
        await asyncio.sleep(self.outage_s)
        kafka.start()
        assert kafka.child is not None
        await wait_ready(kafka.child, 90)
        back = time.monotonic()
        return Outcome(self.name, await ctx.progress.moved(["normalize", "projector"], back, ctx.recovery_timeout))


@dataclass
class PostgresOutage(Fault):
    """SIGKILL of the postmaster, started again after ``outage_s``. Recovery: from its
    return until the projector moves again."""

    at: float = 0.0
    outage_s: float = 5.0

    @property
    def name(self) -> str:
        return f"Postgres killed {self.outage_s:.0f}s"

    async def inject(self, ctx: Context) -> Outcome:
        postgres = ctx.stack.postgres
        # On a stack without fsync and synchronous commit (the test suite's), the last commits
        # before the kill are lost as on a failover to a lagging replica: projectors must notice.
        assert postgres.child is not None
        postgres.child.kill()
        await asyncio.sleep(self.outage_s)
        for attempt in range(20):  # orphaned backends may hold the old shared memory a moment
            postgres.start()
            try:
                await wait_ready(postgres.child, 60)
                break
            except RuntimeError:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.5)
        back = time.monotonic()
        return Outcome(self.name, await ctx.progress.moved(["projector"], back, ctx.recovery_timeout))


@dataclass
class Rebalance(Fault):
    """A second worker of ``service`` joins (a rebalance), and after ``keep_s`` the first
    one is SIGKILLed and not replaced (a second rebalance). Recovery: from the kill until
    the service moves again on the survivor."""

    service: str
    at: float = 0.0
    keep_s: float = 8.0

    @property
    def name(self) -> str:
        return f"rebalance: second {self.service} worker joins, first killed"

    async def inject(self, ctx: Context) -> Outcome:
        joined = time.monotonic()
        await ctx.pipeline.start_ready(self.service)
        joined_s = await ctx.progress.moved([self.service], joined, ctx.recovery_timeout)
        await asyncio.sleep(self.keep_s)
        t_kill = time.monotonic()
        ctx.pipeline.kill(self.service, index=0)
        recovered = await ctx.progress.moved([self.service], t_kill, ctx.recovery_timeout)
        return Outcome(self.name, recovered, f"moving {joined_s:.1f}s after the join" if joined_s else "")


@dataclass
class LeaderKill(Fault):
    """On a cluster: SIGKILL the broker leading ``topic``/``partition``, started again
    after ``down_s``. Recovery: from the kill until normalize and the projector move."""

    topic: str
    #: None: on wa.raw, the partition the workload's first channel is written to; else 0.
    partition: int | None = None
    at: float = 0.0
    down_s: float = 10.0

    @property
    def name(self) -> str:
        busy = self.partition is None and self.topic == RAW.name
        return f"leader of {self.topic}/{'busy' if busy else self.partition or 0} killed"

    async def inject(self, ctx: Context) -> Outcome:
        cluster = ctx.stack.kafka
        assert isinstance(cluster, LocalKafkaCluster), "needs a cluster"
        partition = self.partition
        if partition is None:
            partition = 0
            if self.topic == RAW.name:  # keyed like ingest keys it: provider and channel
                partitions = sorted(tp.partition for tp in await partitions_of(ctx.stack.settings, RAW.name))
                key = f"whapi:{ctx.provider.workload.channel(0)}".encode()
                partition = DefaultPartitioner()(key, partitions, partitions)
        victim = await cluster.leader_of(self.topic, partition)
        t_kill = time.monotonic()
        cluster.kill(victim)
        watch = asyncio.create_task(ctx.progress.moved(["normalize", "projector"], t_kill, ctx.recovery_timeout))
        await asyncio.sleep(self.down_s)
        node = cluster.nodes[victim]
        node.start()
        assert node.child is not None
        await wait_ready(node.child, 90)
        return Outcome(self.name, await watch, f"partition {partition}, kafka-{victim}")


# --------------------------------------------------------------------------- the run


@dataclass
class Report:
    accepted: int
    rows: int
    lost: list[str]
    duplicated: int
    checksum_ok: bool
    dead_letters: int
    answers: dict[int, int]
    outcomes: list[Outcome]
    drained_s: float
    posted_s: float
    embedded: int | None = None  #: accepted messages with chunks in message_embeddings (None: not checked)

    def lines(self) -> list[str]:
        out = [
            f"accepted {self.accepted} distinct messages; rows {self.rows}; lost {len(self.lost)}; "
            f"duplicated {self.duplicated}; checksum {'equal' if self.checksum_ok else 'DIFFERENT'}; "
            f"dead letters {self.dead_letters}"
            + (f"; with embeddings {self.embedded}" if self.embedded is not None else ""),
            f"answers: {dict(sorted(self.answers.items()))} (0: no answer); posting took {self.posted_s:.1f}s, "
            f"rows complete {self.drained_s:.1f}s after the last post",
        ]
        for o in self.outcomes:
            took = f"{o.recovery_s:.1f}s" if o.recovery_s is not None else "NOT RECOVERED"
            out.append(f"  {o.fault}: moving again after {took}" + (f" ({o.detail})" if o.detail else ""))
        return out


async def run_chaos(
    stack: Stack, workload: Workload, *, rate: float, faults: Sequence[Fault], log_dir: Path,
    services: Sequence[str] = ("ingest", "normalize", "projector"), extra_env: dict[str, str] | None = None,
    drain_timeout: float = 240.0, say: Callable[[str], None] = print, embeddings: bool = False,
    static_membership: bool = True,
) -> Report:
    """Start ``services``, post the workload while injecting ``faults`` in order (each
    once the provider's schedule reaches its ``at``), then wait until every accepted
    message is a row (and, with ``embeddings``, has chunks) and reconcile."""
    settings = stack.settings
    log_dir.mkdir(parents=True, exist_ok=True)
    dead_start = await end_offsets(settings, deadletter.TOPIC)
    pipeline = Pipeline(settings, log_dir, extra_env, static_membership=static_membership)
    try:
        for name in services:
            pipeline.start(name)
        for children in pipeline.instances.values():
            for child in children:
                await wait_ready(child, 120)
        provider = Provider(f"http://127.0.0.1:{pipeline.ingest_port}", workload, rate)
        ctx = Context(stack, pipeline, provider, Progress(stack), say)
        t0 = time.monotonic()
        posting = asyncio.create_task(provider.run())
        outcomes: list[Outcome] = []
        for fault in faults:
            while provider.scheduled < fault.at * provider.total and not provider.done.is_set():
                await asyncio.sleep(0.05)
            say(f"[chaos] {fault.name} at delivery {provider.scheduled}/{provider.total}")
            late = provider.done.is_set()
            outcome = await fault.inject(ctx)
            if late:  # nothing new to consume: a consumer may not move at all
                outcome.detail = "; ".join(filter(None, [outcome.detail, "after the last post: lower the rate"]))
            say(f"[chaos]   -> {outcome.recovery_s if outcome.recovery_s is None else round(outcome.recovery_s, 1)}s")
            outcomes.append(outcome)
        await posting
        posted_s = time.monotonic() - t0
        say(f"[chaos] posted {provider.total} deliveries in {posted_s:.1f}s; waiting for the rows")
        t_drain = time.monotonic()
        pattern = f"chaos-{workload.run}-%"
        conn = await _connect(settings)
        try:
            while True:
                n = await conn.fetchval(
                    "select count(distinct provider_message_id) from chat_messages where provider_message_id like $1",
                    pattern,
                )
                embedded = await conn.fetchval(EMBEDDED_SQL, pattern) if embeddings else None
                complete = n >= len(provider.accepted) and (embedded is None or embedded >= n)
                if complete or time.monotonic() - t_drain > drain_timeout:
                    break
                await asyncio.sleep(0.5)
            drained_s = time.monotonic() - t_drain
            rows = {r["provider_message_id"]: r["body"] for r in await conn.fetch(
                "select provider_message_id, body from chat_messages where provider_message_id like $1", pattern,
            )}  # fmt: skip
            summary = await conn.fetchrow(CHECKSUM_SQL, pattern)
        finally:
            await conn.close()
        dead = await read_range(settings, deadletter.TOPIC, dead_start, await end_offsets(settings, deadletter.TOPIC))
        expected = workload.expected(provider.accepted)
        return Report(
            accepted=len(provider.accepted), rows=summary["n"], lost=sorted(set(expected) - set(rows)),
            duplicated=summary["n"] - summary["distinct_ids"],
            checksum_ok=summary["checksum"] == checksum(expected) and rows == expected,
            dead_letters=sum(1 for r in dead if _concerns(r.value, workload.run)),
            answers=provider.answers, outcomes=outcomes, drained_s=drained_s, posted_s=posted_s, embedded=embedded,
        )
    finally:
        pipeline.stop_all()


def _concerns(letter: bytes | None, run: str) -> bool:
    """A dead letter of this run: its original record (or the letter itself) names the run. A
    stack shared with other tests may hold their letters, or letters of their records."""
    if not letter:
        return False
    try:
        event = deadletter.decode(letter)
    except ValueError:  # a letter we cannot read is counted as ours: better a false alarm
        return True
    return isinstance(event, DeadLettered) and (run.encode() in event.value or run.encode() in letter)


EMBEDDED_SQL = """
select count(distinct m.provider_message_id)
from message_embeddings e join chat_messages m on m.id = e.message_id
where m.provider_message_id like $1
"""


async def _connect(settings: Settings, timeout: float = 60.0) -> asyncpg.Connection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncpg.connect(settings.database_url, timeout=5)
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)

