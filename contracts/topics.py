"""Every Kafka topic, declared once: name, partitions, retention and what its key means.

`msgmem topics` and `msgmem dev` create these idempotently; nothing relies on broker-side
auto-creation. Keys by chat keep one chat's events in order on one partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

FOREVER = -1
MIB = 1024 * 1024
DAY_MS = 24 * 60 * 60 * 1000

# wa.raw holds bodies of up to INGEST_MAX_BODY_BYTES (16 MiB by default) plus headers.
RAW_MAX_MESSAGE_BYTES = 20 * MIB
# Derived events: one message, media fact or enrichment result each (WhatsApp texts stop at
# 64k characters; a 50-chunk embedding event is under 1 MiB). Hosted clusters often cap
# every record at 1 MiB: KAFKA_MAX_MESSAGE_BYTES lowers every limit below to that.
EVENT_MAX_MESSAGE_BYTES = 4 * MIB
# What a record costs beyond its key, value and headers: a batch header (61 bytes) plus the
# record's own varints and attributes, rounded up generously.
RECORD_OVERHEAD_BYTES = 128
# Room kept in wa.raw's limit for a delivery's record headers and key (ingest's metadata).
RAW_HEADERS_ALLOWANCE = 64 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    value: str
    partitions: int = 6
    retention_ms: int = FOREVER
    compacted: bool = False
    max_message_bytes: int = EVENT_MAX_MESSAGE_BYTES
    extra_config: dict[str, str] = field(default_factory=dict)
    #: Holds personal content (texts, names, numbers, media references): a retention policy
    #: (RAW_RETENTION_DAYS, TOPIC_RETENTION_DAYS) may bound how long it keeps it.
    content: bool = False

    def limit(self, cluster_cap: int | None = None) -> int:
        """The largest record this topic takes: its declared limit, or the cluster's cap if lower."""
        return min(self.max_message_bytes, cluster_cap) if cluster_cap else self.max_message_bytes

    def config(self, cluster_cap: int | None = None, retention_ms: int | None = None) -> dict[str, str]:
        """Topic-level broker configuration, as strings the admin API expects; ``retention_ms``
        (a policy's, ``retention_of``) replaces the declared retention."""
        cfg = {
            "cleanup.policy": "compact" if self.compacted else "delete",
            "max.message.bytes": str(self.limit(cluster_cap)),
            **retention_config(self.retention_ms if retention_ms is None else retention_ms),
        }
        cfg.update(self.extra_config)
        return cfg


def retention_config(retention_ms: int) -> dict[str, str]:
    """``retention.ms`` and, when it is bounded, ``segment.ms``: the broker deletes whole closed
    segments only, and its default segment lives 7 days, so without a day-long segment a record
    could outlive its retention by a week."""
    if retention_ms == FOREVER:
        return {"retention.ms": str(FOREVER)}
    return {"retention.ms": str(retention_ms), "segment.ms": str(min(retention_ms, DAY_MS))}


def retention_of(spec: TopicSpec, raw_days: int, overrides: Mapping[str, int]) -> int:
    """The retention (ms) a policy gives ``spec``: its TOPIC_RETENTION_DAYS entry, else
    RAW_RETENTION_DAYS for wa.raw, else the declared one; 0 days keeps forever. Only topics
    that hold content take a policy (``Settings`` refuses the others)."""
    days = overrides.get(spec.name, raw_days if spec.name == RAW.name else None)
    if days is None or not spec.content:
        return spec.retention_ms
    return FOREVER if days == 0 else days * DAY_MS


RAW = TopicSpec(
    "wa.raw",
    key="provider:channel",
    value="a provider delivery: body bytes exactly as received, metadata in record headers",
    max_message_bytes=RAW_MAX_MESSAGE_BYTES,
    content=True,
)
MESSAGES = TopicSpec(
    "wa.messages",
    key="chat key",
    value="MessageReceived, MessageSent, MessageEdited, MessageDeleted, ReactionAdded, "
    "ReactionRemoved, StatusUpdated, ConsentChanged, MessageUnsupported, ProviderEventUnsupported",
    content=True,
)
MEDIA = TopicSpec("wa.media", key="chat key", value="MediaStored, MediaFailed, MediaSkipped, MediaExpired", content=True)
TRANSCRIPTS = TopicSpec("wa.transcripts", key="chat key", value="text transcribed from voice notes and audio", content=True)
CAPTIONS = TopicSpec("wa.captions", key="chat key", value="descriptions of images", content=True)
DOCUMENTS = TopicSpec("wa.documents", key="chat key", value="text extracted from documents", content=True)
EMBEDDINGS = TopicSpec("wa.embeddings", key="chat key", value="a message's chunks with their vectors", content=True)
DEADLETTER = TopicSpec(
    "wa.deadletter",
    key="stage",
    value="failed input coordinates (topic, partition, offset), error, attempts",
    partitions=1,
    max_message_bytes=RAW_MAX_MESSAGE_BYTES,
    content=True,
)
# The erasure ledger: compacted (a subject's latest request is all that matters) and kept
# forever, because it must still hide the subject's past when a rebuild reads from offset 0.
ERASURES = TopicSpec(
    "wa.erasures",
    key="erasure subject hash",
    value="ErasureRequested: a subject hash (no plaintext phone or chat key), when, by whom",
    partitions=1,
    compacted=True,
)

# The retention policies as events (contracts.retention): keyed by chat like the chat's other
# events, kept forever (a rebuild from offset 0 reads the cut-offs with the erasure ledger) and
# not compacted (both kinds of cut-off share a chat's key).
RETENTION = TopicSpec(
    "wa.retention",
    key="chat key",
    value="MessagesExpired, TextsCleared: a retention policy's cut-off for one chat",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    RAW, MESSAGES, MEDIA, TRANSCRIPTS, CAPTIONS, DOCUMENTS, EMBEDDINGS, DEADLETTER, ERASURES, RETENTION,
)


def record_size(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]] = ()) -> int:
    """An upper estimate of one record's size in a batch of its own, as the broker counts it
    against ``max.message.bytes``."""
    size = RECORD_OVERHEAD_BYTES + len(key or b"") + len(value or b"")
    for name, raw in headers:
        size += len(name) + len(raw or b"") + 10
    return size


def limit_of(topic: str, cluster_cap: int | None = None) -> int:
    """The record limit of ``topic``; a topic not declared here (a test's scratch topic) gets
    the derived-event default."""
    try:
        return by_name(topic).limit(cluster_cap)
    except KeyError:
        return min(EVENT_MAX_MESSAGE_BYTES, cluster_cap) if cluster_cap else EVENT_MAX_MESSAGE_BYTES


def smallest_limit(cluster_cap: int | None = None) -> int:
    return min(spec.limit(cluster_cap) for spec in ALL_TOPICS)


def largest_limit(cluster_cap: int | None = None) -> int:
    return max(spec.limit(cluster_cap) for spec in ALL_TOPICS)


def by_name(name: str) -> TopicSpec:
    for spec in ALL_TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown topic {name!r}")
