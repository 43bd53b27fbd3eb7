"""The port through which ingest appends deliveries to wa.raw, and its Kafka adapter.

The adapter answers only once the broker has acknowledged the write (acks=all,
idempotent producer). It starts even when the broker is down, reports not-ready, and
keeps reconnecting in the background, so the service recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts import raw
from contracts.raw import RawDelivery
from contracts.settings import Settings
from ingest.errors import BrokerUnavailable
from msgmem.kafka import make_producer

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, delivery: RawDelivery) -> None:
        """Append the delivery durably or raise ``BrokerUnavailable``."""

    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class KafkaPublisher:
    def __init__(self, settings: Settings, *, reconnect_interval: float = 1.0) -> None:
        self._settings = settings
        self._timeout = settings.ingest_publish_timeout_seconds
        self._reconnect_interval = reconnect_interval
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._failures = 0

    def ready(self) -> bool:
        return self._producer is not None and self._failures == 0

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_forever(), name="kafka-connect")
        # Give a reachable broker a moment so the first requests do not see 503.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._connector), timeout=self._timeout)

    async def _connect_forever(self) -> None:
        while self._producer is None:
            producer = make_producer(self._settings)
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                log.warning("kafka not reachable (%s); retrying in %.0fs", type(exc).__name__, self._reconnect_interval)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(self._reconnect_interval)
                continue
            self._producer = producer
            self._failures = 0
            log.info("connected to kafka at %s", self._settings.kafka_bootstrap_servers)

    async def publish(self, delivery: RawDelivery) -> None:
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to the broker yet")
        try:
            # asyncio.timeout, not wait_for: no extra task per webhook.
            async with asyncio.timeout(self._timeout):
                await producer.send_and_wait(raw.TOPIC, delivery.body, key=delivery.key, headers=delivery.kafka_headers())
        except (KafkaError, asyncio.TimeoutError, OSError) as exc:
            self._failures += 1
            raise BrokerUnavailable(f"broker did not acknowledge the write ({type(exc).__name__})") from exc
        self._failures = 0

    async def stop(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connector
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


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
