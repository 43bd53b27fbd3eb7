"""`msgmem status`: where every stage is in its input, how deep the dead-letter topic is,
how fresh each table is, what each retention policy's next sweep removes
(``streams.media.retention_sweep.preview``), and what the AI calls of the last ``--days`` cost (read from the
usage on the enrichment and embeddings events, folded by msgmem/usage.py). Read-only;
safe against production."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts import embeddings, enrichment, messages
from contracts.envelope import Envelope
from contracts.settings import Settings
from msgmem.dlq import load as load_letters
from runtime.kafka import connection_config, end_offsets, read_since_time
from msgmem.services import SERVICES
from msgmem.usage import MESSAGE_TYPES, UsageReport, fold
from msgmem.usage import render as render_usage
from streams.media.retention_sweep import PolicyPreview, preview

TABLE_CLOCKS = {
    "chats": "updated_at",
    "chat_messages": "updated_at",
    "chat_message_versions": "created_at",
    "chat_media": "updated_at",
    "message_embeddings": "created_at",
    "dead_letters": "updated_at",
}


@dataclass(frozen=True)
class PartitionLag:
    stage: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


@dataclass(frozen=True)
class Status:
    partitions: list[PartitionLag]
    dead_letters_open: int
    dead_letters_total: int
    newest_rows: dict[str, datetime | None]
    usage: UsageReport
    #: Per retention policy, what the next sweep removes and when the oldest row goes.
    retention: list[PolicyPreview] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "usage": self.usage.as_json(),
            "retention": [p.as_json() for p in self.retention],
            "partitions": [asdict(p) | {"lag": p.lag} for p in self.partitions],
            "lag_by_stage": self.lag_by_stage(),
            "dead_letters": {"open": self.dead_letters_open, "total": self.dead_letters_total},
            "newest_rows": {t: v.isoformat() if v else None for t, v in self.newest_rows.items()},
        }

    def lag_by_stage(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in self.partitions:
            totals[p.stage] = totals.get(p.stage, 0) + p.lag
        return totals


async def _kafka_committed(settings: Settings, group: str) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {
        (settings.declared_topic(tp.topic), tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0
    }


async def _postgres_committed(conn: asyncpg.Connection, projection: str) -> dict[tuple[str, int], int]:
    rows = await conn.fetch(
        "select topic, partition, next_offset from projection_offsets where projection = $1", projection
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


# The topics whose events carry usage, and the types among them that do (the rest are not decoded).
_USAGE_TOPICS = {
    enrichment.TRANSCRIPTS_TOPIC: b"audio_transcribed", enrichment.CAPTIONS_TOPIC: b"image_captioned",
    enrichment.DOCUMENTS_TOPIC: b"document_extracted", embeddings.TOPIC: b"chunks_replaced",
}  # fmt: skip
_CODECS = {**enrichment.CODECS, embeddings.TOPIC: embeddings.CODEC}


async def collect_usage(settings: Settings, days: int, *, now: datetime | None = None) -> UsageReport:
    """The usage of the last ``days`` UTC days (today included) and the messages logged in them."""
    since = (now or datetime.now(UTC)).date() - timedelta(days=days - 1)
    start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    events: list[Envelope] = []
    for topic, wanted in _USAGE_TOPICS.items():
        for r in await read_since_time(settings, topic, start):
            if dict(r.headers or ()).get("mm-type", wanted) != wanted:
                continue
            try:
                events.append(_CODECS[topic].decode(r.value))
            except ValueError:
                continue  # poison: not ours to count
    logged = await read_since_time(settings, messages.TOPIC, start)
    count = sum(1 for r in logged if dict(r.headers or ()).get("mm-type") in MESSAGE_TYPES)
    return UsageReport(since, days, fold(events, settings.ai_prices, since=since), count)


async def _lags(settings: Settings, conn: asyncpg.Connection) -> list[PartitionLag]:
    ends = {topic: await end_offsets(settings, topic) for s in SERVICES for topic in s.inputs}
    committed = {
        service.name: await _postgres_committed(conn, service.projection) if service.projection
        else await _kafka_committed(settings, service.group_in(settings))
        for service in SERVICES if service.consumes
    }  # fmt: skip
    return assemble_lags(ends, committed)


def assemble_lags(
    ends: dict[str, dict[TopicPartition, int]], committed: dict[str, dict[tuple[str, int], int]],
) -> list[PartitionLag]:  # fmt: skip
    """Pure: every consuming service's lag by input partition, from each input topic's end
    offsets and each service's committed offsets (by service name), in ``SERVICES`` order."""
    partitions: list[PartitionLag] = []
    for service in SERVICES:
        if not service.consumes:
            continue
        done = committed.get(service.name, {})
        for topic in service.inputs:
            for tp, end in sorted(ends[topic].items(), key=lambda item: item[0].partition):
                partitions.append(PartitionLag(service.name, topic, tp.partition, done.get((topic, tp.partition)), end))
    return partitions


async def collect_lags(settings: Settings) -> list[PartitionLag]:
    """Every consuming stage's lag by input partition (``collect`` without letters, tables or usage)."""
    conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
    try:
        return await _lags(settings, conn)
    finally:
        await conn.close()


async def collect(settings: Settings, days: int = 7) -> Status:
    conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
    try:
        partitions = await _lags(settings, conn)
        newest = {table: await conn.fetchval(f"select max({column}) from {table}") for table, column in TABLE_CLOCKS.items()}
        retention = await preview(conn, settings)
    finally:
        await conn.close()
    letters = await load_letters(settings)
    usage = await collect_usage(settings, days)
    return Status(partitions, sum(x.open for x in letters.values()), len(letters), newest, usage, retention)


def render(status: Status) -> str:
    lines = [f"{'stage':<12} {'topic':<16} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}"]
    for p in status.partitions:
        committed = "-" if p.committed is None else str(p.committed)
        lines.append(f"{p.stage:<12} {p.topic:<16} {p.partition:>4} {committed:>10} {p.end:>10} {p.lag:>8}")
    lines.append("")
    lines.append("lag by stage: " + ", ".join(f"{k} {v}" for k, v in status.lag_by_stage().items()))
    lines.append(f"dead letters: {status.dead_letters_open} open of {status.dead_letters_total}")
    lines.append("newest rows: " + ", ".join(
        f"{t} {v.isoformat(timespec='seconds') if v else 'none'}" for t, v in status.newest_rows.items()
    ))
    if status.retention:
        lines.append("retention: " + "; ".join(p.render() for p in status.retention))
    lines.append("")
    lines.append(render_usage(status.usage))
    return "\n".join(lines)
