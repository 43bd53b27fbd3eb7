"""Every Kafka topic, declared once: name, partitions, retention and what its key means.

`msgmem topics` and `msgmem dev` create these idempotently; nothing relies on broker-side
auto-creation. Keys by chat keep one chat's events in order on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FOREVER = -1
MIB = 1024 * 1024

# wa.raw holds bodies of up to INGEST_MAX_BODY_BYTES (16 MiB by default) plus headers.
RAW_MAX_MESSAGE_BYTES = 20 * MIB


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    value: str
    partitions: int = 6
    retention_ms: int = FOREVER
    compacted: bool = False
    max_message_bytes: int | None = None
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """Topic-level broker configuration, as strings the admin API expects."""
        cfg = {
            "cleanup.policy": "compact" if self.compacted else "delete",
            "retention.ms": str(self.retention_ms),
        }
        if self.max_message_bytes is not None:
            cfg["max.message.bytes"] = str(self.max_message_bytes)
        cfg.update(self.extra_config)
        return cfg


RAW = TopicSpec(
    "wa.raw",
    key="provider:channel",
    value="a provider delivery: body bytes exactly as received, metadata in record headers",
    max_message_bytes=RAW_MAX_MESSAGE_BYTES,
)
MESSAGES = TopicSpec(
    "wa.messages",
    key="chat key",
    value="MessageReceived, MessageSent, MessageEdited, MessageDeleted, ReactionAdded, "
    "ReactionRemoved, StatusUpdated, ConsentChanged",
)
MEDIA = TopicSpec("wa.media", key="chat key", value="MediaStored, MediaFailed")
TRANSCRIPTS = TopicSpec("wa.transcripts", key="chat key", value="text transcribed from voice notes and audio")
CAPTIONS = TopicSpec("wa.captions", key="chat key", value="descriptions of images")
DOCUMENTS = TopicSpec("wa.documents", key="chat key", value="text extracted from documents")
EMBEDDINGS = TopicSpec("wa.embeddings", key="chat key", value="a message's chunks with their vectors")
DEADLETTER = TopicSpec(
    "wa.deadletter",
    key="stage",
    value="failed input coordinates (topic, partition, offset), error, attempts",
    partitions=1,
    max_message_bytes=RAW_MAX_MESSAGE_BYTES,
)

ALL_TOPICS: tuple[TopicSpec, ...] = (RAW, MESSAGES, MEDIA, TRANSCRIPTS, CAPTIONS, DOCUMENTS, EMBEDDINGS, DEADLETTER)


def by_name(name: str) -> TopicSpec:
    for spec in ALL_TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown topic {name!r}")
