"""The long-running processes of Message Memory, declared once.

`msgmem dev` runs each of these as a child process; `docker-compose.yml` has one service
per entry (a test keeps the two in step). Each runs as ``python -m <module>`` and reads
its configuration from the environment through ``contracts.settings.Settings``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from contracts.settings import Settings


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    ready_pattern: str
    description: str
    #: The consumer group and input topics, for `msgmem status` (None: not a consumer).
    group: str | None = None
    inputs: tuple[str, ...] = ()
    #: Where the consumed offsets live: Kafka's group offsets, or projection_offsets rows
    #: (projections commit them with their rows) under this projection name.
    projection: str | None = None

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    def env(self, settings: Settings) -> dict[str, str]:
        """The variables that point a child at the stack ``settings`` describes."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "DATABASE_URL": settings.database_url,
            "STATE_DIR": str(settings.state_dir),
            "PYTHONUNBUFFERED": "1",
        }


def by_name(name: str) -> Service:
    for service in SERVICES:
        if service.name == name:
            return service
    raise KeyError(f"no service named {name!r}")


SERVICES: tuple[Service, ...] = (
    Service("ingest", "ingest", r"Uvicorn running on", "verified webhooks appended to wa.raw"),
    Service(
        "normalize", "streams.normalize", r"\[\^Worker\]: Ready", "wa.raw deliveries to wa.messages events",
        group="msgmem-normalize", inputs=("wa.raw",),
    ),
    Service(
        "media", "streams.media", r"\[\^Worker\]: Ready", "media downloaded and stored; wa.media",
        group="msgmem-media", inputs=("wa.messages",),
    ),
    Service(
        "transcribe", "streams.transcribe", r"\[\^Worker\]: Ready", "voice notes and audio to text; wa.transcripts",
        group="msgmem-transcribe", inputs=("wa.media",),
    ),
    Service(
        "caption", "streams.caption", r"\[\^Worker\]: Ready", "images described; wa.captions",
        group="msgmem-caption", inputs=("wa.media",),
    ),
    Service(
        "extract", "streams.extract", r"\[\^Worker\]: Ready", "PDF text, text layer first; wa.documents",
        group="msgmem-extract", inputs=("wa.media",),
    ),
    Service(
        "projector", "projections", r"projector started", "wa.messages to chats and chat_messages",
        group="msgmem-projector", inputs=("wa.messages",), projection="chat_messages",
    ),
    Service(
        "media_projector", "projections.media", r"projector started: chat_media",
        "wa.media and enrichment results to chat_media; their text to chat_messages",
        group="msgmem-media-projector", inputs=("wa.media", "wa.transcripts", "wa.captions", "wa.documents"),
        projection="chat_media",
    ),
    Service(
        "embed", "streams.embed", r"\[\^Worker\]: Ready", "texts to chunk vectors; wa.embeddings",
        group="msgmem-embed", inputs=("wa.messages", "wa.transcripts", "wa.captions", "wa.documents"),
    ),
    Service(
        "embeddings_projector", "projections.embeddings", r"projector started: message_embeddings",
        "wa.embeddings to message_embeddings", group="msgmem-embeddings-projector", inputs=("wa.embeddings",),
        projection="message_embeddings",
    ),
    Service("recall", "projections.recall", r"Uvicorn running on", "recall API for agents"),
    Service("alerts", "msgmem.alerts", r"alerts watching", "Telegram / webhook alert per new dead letter"),
)
