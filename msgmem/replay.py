"""`msgmem replay STAGE`: re-run one stage's function over a range of its input topic.

Runs beside the live workers (no consumer group: nothing of theirs moves). Outputs go to
the stage's usual topics with the same deterministic ids, so projections update rows in
place instead of adding new ones. ``--from``/``--until`` take an offset (applied to every
partition) or an ISO time; ``--chat`` keeps only that chat's outputs; ``--dry-run`` counts.
A record that fails, or an item of it that a stage dead-letters (normalize), is counted
as a failure and not dead-lettered again: the live stage did that already.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiokafka import TopicPartition

from contracts import deadletter
from contracts.settings import Settings
from runtime.kafka import end_offsets, make_consumer, partitions_of
from runtime.progress import Progress
from msgmem.stages import STAGES, open_handler
from streams.common.outputs import KafkaOutputs
from streams.common.records import InputRecord, Output


@dataclass(frozen=True)
class ReplaySummary:
    stage: str
    inputs: int
    outputs: int
    failures: int
    seconds: float


def parse_position(text: str | None) -> int | datetime | None:
    """An offset (digits) or an ISO-8601 time; None means the topic's start or end."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r}: give a timezone, e.g. 2026-11-20T09:00:00Z")
    return moment


def input_topic(stage: str) -> str:
    for process in STAGES:  # not a projection: it would append its own input to itself
        if process.name == stage:
            return process.inputs[0]
    raise KeyError(f"no stage named {stage!r} can be replayed; stages: {', '.join(p.name for p in STAGES)} "
                   "(projections are rebuilt with `msgmem projections rebuild`)")


async def _offsets(  # type: ignore[no-untyped-def]
    consumer, parts: list[TopicPartition], position: int | datetime | None,
    default: dict[TopicPartition, int], ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Per-partition offsets for a position; a time past every record maps to the end."""
    if position is None:
        return dict(default)
    if isinstance(position, int):
        return {tp: position for tp in parts}
    found = await consumer.offsets_for_times({tp: int(position.timestamp() * 1000) for tp in parts})
    return {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in parts}


async def replay(
    settings: Settings, stage: str, *, start: int | datetime | None, until: int | datetime | None,
    chat: str | None = None, partition: int | None = None, dry_run: bool = False, progress: bool = True,
) -> ReplaySummary:
    """Re-run ``stage`` over its input from ``start`` to ``until`` (offsets apply to every
    partition unless ``partition`` names one; times are looked up per partition)."""
    topic = input_topic(stage)
    async with open_handler(stage, settings) as handler:
        return await _replay(settings, stage, topic, handler, start=start, until=until, chat=chat,
                             partition=partition, dry_run=dry_run, progress=progress)


async def _replay(  # type: ignore[no-untyped-def]
    settings: Settings, stage: str, topic: str, handler, *, start, until, chat, partition, dry_run, progress,
) -> ReplaySummary:
    parts = every = await partitions_of(settings, topic)
    if partition is not None:
        parts = [tp for tp in every if tp.partition == partition]
        if not parts:
            raise KeyError(f"{topic} has no partition {partition} (it has {len(every)})")
    ends = await end_offsets(settings, topic)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    writer = None if dry_run else await KafkaOutputs.start(settings)
    inputs = outputs = failures = 0
    began = datetime.now()
    try:
        beginnings = await consumer.beginning_offsets(parts)
        lo = await _offsets(consumer, parts, start, beginnings, ends)
        hi = await _offsets(consumer, parts, until, ends, ends)
        lo = {tp: max(lo[tp], beginnings[tp]) for tp in parts}
        hi = {tp: min(hi[tp], ends[tp]) for tp in parts}
        wanted = [tp for tp in parts if hi[tp] > lo[tp]]
        bar = Progress(sum(hi[tp] - lo[tp] for tp in wanted), f"replay {stage}") if progress else None
        if wanted:
            consumer.assign(wanted)
            for tp in wanted:
                consumer.seek(tp, lo[tp])
        remaining = set(wanted)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=2000)
            pending: list[Output] = []
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= hi[tp]:
                        remaining.discard(tp)
                        break
                    inputs += 1
                    record = InputRecord(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                    try:
                        produced = await handler(record)
                    except Exception:  # noqa: BLE001 - counted; the live stage dead-lettered it already
                        failures += 1
                        continue
                    for o in produced:
                        if o.topic == deadletter.TOPIC:
                            failures += 1
                        elif chat is None or o.key == chat.encode():
                            pending.append(o)
                    if r.offset >= hi[tp] - 1:
                        remaining.discard(tp)
                if bar:
                    bar.advance(len(records))
            outputs += len(pending)
            if writer is not None and pending:
                await writer.write(pending)
        if bar:
            bar.close()
    finally:
        if writer is not None:
            await writer.stop()
        await consumer.stop()
    return ReplaySummary(stage, inputs, outputs, failures, (datetime.now() - began).total_seconds())
