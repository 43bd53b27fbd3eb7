"""The port through which ingest appends deliveries to wa.raw, and its Kafka adapter.

The adapter answers only once the broker has acknowledged the write (acks=all,
idempotent producer). It starts even when the broker is down, reports not-ready, and
keeps reconnecting in the background, so the service recovers by itself. Records reach
the producer through one ``PartitionLane`` per partition (see ``ingest.lanes``).

A producer whose writes have all failed for ``stuck_after`` seconds is replaced by a new
one. After a broker restart an idempotent producer can stay wedged on its old sequence
numbers (OutOfOrderSequenceNumber on every batch, 503s for over a minute, seen in the
fault suite about one run in four); a fresh producer gets a fresh producer id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from contracts import raw
from contracts.raw import RawDelivery
from contracts.settings import Settings
from ingest.errors import BrokerUnavailable
from ingest.lanes import BROKER_ERRORS, PartitionLane, Record
from runtime.kafka import make_producer
from runtime.logging_setup import broker_answered

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, delivery: RawDelivery) -> None:
        """Append the delivery durably or raise ``BrokerUnavailable``."""

    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class KafkaPublisher:
    def __init__(
        self, settings: Settings, *, reconnect_interval: float = 1.0, stuck_after: float | None = None,
        producer_factory: Callable[[Settings], AIOKafkaProducer] = make_producer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._timeout = settings.ingest_publish_timeout_seconds
        self._reconnect_interval = reconnect_interval
        self._stuck_after = stuck_after if stuck_after is not None else 3 * self._timeout
        self._make_producer = producer_factory
        self._clock = clock
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._failures = 0
        self._failing_since: float | None = None  # first failure since the last acknowledged write
        self._replaced = 0
        self._lanes: dict[int, PartitionLane] = {}
        self._partitions: int | None = None  # wa.raw's partition count, kept current by metadata updates

    def ready(self) -> bool:
        return self._producer is not None and self._failures == 0

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_forever(), name="kafka-connect")
        # Give a reachable broker a moment so the first requests do not see 503.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._connector), timeout=self._timeout)

    async def _connect_forever(self) -> None:
        attempts = 0
        while self._producer is None:
            producer = self._make_producer(self._settings)
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                if attempts % 30 == 0:  # one line, then one every 30 attempts: an outage is not a flood
                    log.warning(
                        "kafka not reachable (%s); retrying every %.0fs", type(exc).__name__, self._reconnect_interval
                    )
                attempts += 1
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(self._reconnect_interval)
                continue
            producer.client.cluster.add_listener(self._on_metadata)
            self._on_metadata(producer.client.cluster)
            self._producer = producer
            self._failures = 0
            log.info("connected to kafka at %s", self._settings.kafka_bootstrap_servers)

    async def publish(self, delivery: RawDelivery) -> None:
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to the broker yet")
        key = delivery.key
        partition = await self._partition_of(producer, key)
        lane = self._lanes.get(partition)
        if lane is None:
            lane = self._lanes[partition] = PartitionLane(
                partition, self._send_batch, timeout=self._timeout,
                linger=self._settings.kafka_producer_linger_ms / 1000,
            )
        try:
            await lane.add((key, delivery.body, delivery.kafka_headers()))
        except BrokerUnavailable:
            self._failed(producer)
            raise
        if self._failures:
            broker_answered()
        self._failures = 0
        self._failing_since = None

    def _failed(self, producer: AIOKafkaProducer) -> None:
        """Count a failed write; replace the producer once nothing has succeeded for ``stuck_after``."""
        self._failures += 1
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since >= self._stuck_after and self._producer is producer:
            self._replaced += 1
            log.warning(
                "no write acknowledged for %.0fs; replacing the Kafka producer (replacement %d)",
                now - self._failing_since, self._replaced,
            )
            self._producer, self._failing_since = None, None
            asyncio.get_running_loop().create_task(_stop_quietly(producer))
            self._connector = asyncio.create_task(self._connect_forever(), name="kafka-reconnect")

    def _on_metadata(self, cluster: ClusterMetadata) -> None:
        self._partitions = len(cluster.partitions_for_topic(self._settings.topic(raw.TOPIC)) or ()) or None

    async def _partition_of(self, producer: AIOKafkaProducer, key: bytes) -> int:
        """The partition Kafka's default partitioner picks for ``key`` (murmur2, as the Java
        client does), so keys land where any other producer would put them."""
        if self._partitions is None:
            try:
                async with asyncio.timeout(self._timeout):
                    self._partitions = len(await producer.partitions_for(raw.TOPIC))
            except BROKER_ERRORS as exc:
                self._failed(producer)
                raise BrokerUnavailable(f"no metadata for {raw.TOPIC} ({type(exc).__name__})") from exc
        return _partition(key, self._partitions)

    async def _send_batch(self, records: list[Record], partition: int) -> None:
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to the broker")
        acks = []
        builder = producer.create_batch()
        for key, value, headers in records:
            if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:  # full
                acks.append(await producer.send_batch(builder, raw.TOPIC, partition=partition))
                builder = producer.create_batch()
                builder.append(timestamp=None, key=key, value=value, headers=headers)  # a first record always fits
        builder.close()  # ready to send now: the lane has already lingered
        acks.append(await producer.send_batch(builder, raw.TOPIC, partition=partition))
        for outcome in await asyncio.gather(*acks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def stop(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connector
        for lane in self._lanes.values():
            with contextlib.suppress(Exception):
                await lane.drained()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await producer.stop()


@functools.lru_cache(maxsize=4096)
def _partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class RecordingPublisher:
    """A fake that keeps what it was asked to publish; ``fail`` makes it behave like a dead broker."""

    def __init__(self) -> None:
        self.published: list[RawDelivery] = []
        self.fail = False

    def ready(self) -> bool:
        return not self.fail

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, delivery: RawDelivery) -> None:
        if self.fail:
            raise BrokerUnavailable("broker down (fake)")
        self.published.append(delivery)
