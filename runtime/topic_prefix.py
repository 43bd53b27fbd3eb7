"""Kafka clients that speak declared topic names while the broker holds prefixed ones.

With KAFKA_TOPIC_PREFIX set, wa.raw lives on the broker as ``<prefix>wa.raw``. Everything
above the client (handlers, dead-letter coordinates, ``projection_offsets``, the
``source_topic`` of rows) keeps the declared name, so rows and letters are the same
whatever the prefix and a rebuild compares equal across deployments. The translation happens
here and nowhere else: these subclasses add the prefix to every topic going out and take it
off every topic, partition and record coming back. :func:`runtime.kafka.make_consumer` and
``make_producer`` return them only when a prefix is set; without one the plain clients run
and nothing is rewritten.

Faust stages get the same treatment in ``streams.common.faust_app`` (subscription and
``to_record``); the admin helpers of ``runtime.kafka`` translate by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

V = TypeVar("V")


class TopicNames:
    """Declared <-> broker names under one prefix (pure)."""

    def __init__(self, prefix: str) -> None:
        if not prefix:
            raise ValueError("a TopicNames needs a non-empty prefix")
        self.prefix = prefix

    def broker(self, topic: str) -> str:
        return self.prefix + topic

    def declared(self, topic: str) -> str:
        return topic[len(self.prefix):] if topic.startswith(self.prefix) else topic

    def broker_tp(self, tp: TopicPartition) -> TopicPartition:
        return TopicPartition(self.prefix + tp.topic, tp.partition)

    def declared_tp(self, tp: TopicPartition) -> TopicPartition:
        return TopicPartition(self.declared(tp.topic), tp.partition)

    def broker_keys(self, by_tp: Mapping[TopicPartition, V]) -> dict[TopicPartition, V]:
        return {self.broker_tp(tp): v for tp, v in by_tp.items()}

    def declared_keys(self, by_tp: Mapping[TopicPartition, V]) -> dict[TopicPartition, V]:
        return {self.declared_tp(tp): v for tp, v in by_tp.items()}

    def declared_record(self, record: ConsumerRecord) -> ConsumerRecord:
        record.topic = self.declared(record.topic)  # a fresh object of this fetch: rename in place
        return record


class _DeclaredListener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, inner: ConsumerRebalanceListener, names: TopicNames) -> None:
        self._inner = inner
        self._names = names

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._inner.on_partitions_revoked({self._names.declared_tp(tp) for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._inner.on_partitions_assigned({self._names.declared_tp(tp) for tp in assigned})


class PrefixedConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """An AIOKafkaConsumer whose callers name topics as declared (see the module docstring)."""

    def __init__(self, *topics: str, names: TopicNames, **config: Any) -> None:
        self._names = names
        super().__init__(*(names.broker(t) for t in topics), **config)

    def _tps(self, tps: Iterable[TopicPartition]) -> list[TopicPartition]:
        return [self._names.broker_tp(tp) for tp in tps]

    def subscribe(self, topics: Iterable[str] = (), pattern: str | None = None,
                  listener: ConsumerRebalanceListener | None = None) -> None:  # fmt: skip
        if pattern is not None:
            raise ValueError("pattern subscriptions are not translated; name the declared topics")
        wrapped = _DeclaredListener(listener, self._names) if listener is not None else None
        super().subscribe(topics=[self._names.broker(t) for t in topics], listener=wrapped)

    def subscription(self) -> set[str]:
        return {self._names.declared(t) for t in super().subscription()}

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        super().assign(self._tps(partitions))

    def assignment(self) -> set[TopicPartition]:
        return {self._names.declared_tp(tp) for tp in super().assignment()}

    async def commit(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        await super().commit(None if offsets is None else self._names.broker_keys(offsets))

    async def committed(self, partition: TopicPartition) -> int | None:
        return await super().committed(self._names.broker_tp(partition))

    async def topics(self) -> set[str]:
        return {self._names.declared(t) for t in await super().topics() if t.startswith(self._names.prefix)}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return super().partitions_for_topic(self._names.broker(topic))

    async def position(self, partition: TopicPartition) -> int:
        return await super().position(self._names.broker_tp(partition))

    def highwater(self, partition: TopicPartition) -> int | None:
        return super().highwater(self._names.broker_tp(partition))

    def last_stable_offset(self, partition: TopicPartition) -> int | None:
        return super().last_stable_offset(self._names.broker_tp(partition))

    def last_poll_timestamp(self, partition: TopicPartition) -> int | None:
        return super().last_poll_timestamp(self._names.broker_tp(partition))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        super().seek(self._names.broker_tp(partition), offset)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        return await super().seek_to_beginning(*self._tps(partitions))

    async def seek_to_end(self, *partitions: TopicPartition) -> bool:
        return await super().seek_to_end(*self._tps(partitions))

    async def seek_to_committed(self, *partitions: TopicPartition) -> dict[TopicPartition, int | None]:
        # aiokafka's own implementation calls self.committed() with broker names: go around it.
        positions = {}
        for tp in partitions or tuple(self.assignment()):
            offset = await self.committed(tp)
            if offset is not None:
                self.seek(tp, offset)
            positions[tp] = offset
        return positions

    async def offsets_for_times(self, timestamps: Mapping[TopicPartition, int]) -> dict[TopicPartition, Any]:
        return self._names.declared_keys(await super().offsets_for_times(self._names.broker_keys(timestamps)))

    async def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self._names.declared_keys(await super().beginning_offsets(self._tps(partitions)))

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self._names.declared_keys(await super().end_offsets(self._tps(partitions)))

    async def getone(self, *partitions: TopicPartition) -> ConsumerRecord:
        return self._names.declared_record(await super().getone(*self._tps(partitions)))

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[ConsumerRecord]]:  # fmt: skip
        batch = await super().getmany(*self._tps(partitions), timeout_ms=timeout_ms, max_records=max_records)
        return {
            self._names.declared_tp(tp): [self._names.declared_record(r) for r in records]
            for tp, records in batch.items()
        }

    def pause(self, *partitions: TopicPartition) -> None:
        super().pause(*self._tps(partitions))

    def resume(self, *partitions: TopicPartition) -> None:
        super().resume(*self._tps(partitions))

    def paused(self) -> set[TopicPartition]:
        return {self._names.declared_tp(tp) for tp in super().paused()}


class PrefixedProducer(AIOKafkaProducer):  # type: ignore[misc]
    """An AIOKafkaProducer whose callers name topics as declared (``send_and_wait`` goes
    through ``send``, so it is translated once)."""

    def __init__(self, *, names: TopicNames, **config: Any) -> None:
        self._names = names
        super().__init__(**config)

    async def partitions_for(self, topic: str) -> set[int]:
        return await super().partitions_for(self._names.broker(topic))

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        return await super().send(self._names.broker(topic), *args, **kwargs)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        return await super().send_batch(batch, self._names.broker(topic), partition=partition)
