"""Every long-running process of Message Memory, declared once.

One name per process, used everywhere a process is named: the `msgmem dev` child and its
log prefix, the docker-compose service (a test keeps the file in step), the rows of
`msgmem status`, the stage dead letters carry and `msgmem dlq --stage` / `msgmem replay`
accept, and the ``stage`` label of the process's metrics. Beside it: the module that runs
it (``python -m <module>``), its consumer group, the topics it reads and writes, and the
setting that holds its metrics port. Declarations only: nothing here opens a connection.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

from contracts import topics
from contracts.settings import Settings

Kind = Literal["http", "stage", "projector", "ops"]

WORKER_READY = r"\[\^Worker\]: Ready"


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    kind: Kind
    ready_pattern: str
    description: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    #: Rows of ``projection_offsets`` holding a projector's position (committed with its rows).
    projection: str | None = None
    #: The Settings field of its metrics port (0: none). Stream stages share STAGE_WEB_PORT.
    metrics_port_setting: str | None = None
    #: Names earlier versions wrote into dead letters, still accepted by `msgmem dlq`.
    former_names: tuple[str, ...] = ()

    @property
    def consumes(self) -> bool:
        return bool(self.inputs)

    def group_in(self, settings: Settings) -> str:
        """The consumer group (a stage's Faust app id): KAFKA_GROUP_PREFIX + the name, dashed."""
        if not self.consumes:
            raise ValueError(f"{self.name} reads no topic and has no consumer group")
        return settings.consumer_group(self.name)

    @property
    def group(self) -> str | None:
        """The consumer group under the default prefix (None: not a consumer), for callers
        without settings; processes use ``group_in(settings)``."""
        return self.group_in(Settings.model_construct()) if self.consumes else None

    def metrics_port(self, settings: Settings) -> int:
        return int(getattr(settings, self.metrics_port_setting)) if self.metrics_port_setting else 0

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    def env(self, settings: Settings) -> dict[str, str]:
        """The variables that point a child process at the stack ``settings`` describes."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "KAFKA_GROUP_PREFIX": settings.kafka_group_prefix,
            "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "DATABASE_URL": settings.database_url,
            "STATE_DIR": str(settings.state_dir),
            "PYTHONUNBUFFERED": "1",
        }

    def answers_to(self, name: str) -> bool:
        return name == self.name or name in self.former_names


_ENRICHED = (topics.TRANSCRIPTS.name, topics.CAPTIONS.name, topics.DOCUMENTS.name)

INGEST = Process("ingest", "ingest", "http", r"Uvicorn running on", "verified webhooks appended to wa.raw",
                 outputs=(topics.RAW.name,))
NORMALIZE = Process(
    "normalize", "streams.normalize", "stage", WORKER_READY, "wa.raw deliveries to wa.messages events",
    inputs=(topics.RAW.name,), outputs=(topics.MESSAGES.name,), metrics_port_setting="stage_web_port",
)
MEDIA = Process(
    "media", "streams.media", "stage", WORKER_READY,
    "media downloaded and stored; wa.media; its timer sweeps the retention policies (wa.retention)",
    inputs=(topics.MESSAGES.name,), outputs=(topics.MEDIA.name, topics.RETENTION.name), metrics_port_setting="stage_web_port",
)
TRANSCRIBE = Process(
    "transcribe", "streams.transcribe", "stage", WORKER_READY, "voice notes and audio to text; wa.transcripts",
    inputs=(topics.MEDIA.name,), outputs=(topics.TRANSCRIPTS.name,), metrics_port_setting="stage_web_port",
)
CAPTION = Process(
    "caption", "streams.caption", "stage", WORKER_READY, "images described; wa.captions",
    inputs=(topics.MEDIA.name,), outputs=(topics.CAPTIONS.name,), metrics_port_setting="stage_web_port",
)
EXTRACT = Process(
    "extract", "streams.extract", "stage", WORKER_READY, "PDF text, text layer first; wa.documents",
    inputs=(topics.MEDIA.name,), outputs=(topics.DOCUMENTS.name,), metrics_port_setting="stage_web_port",
)
PROJECTOR = Process(
    "projector", "projections.messages", "projector", r"projector started", "wa.messages to chats and chat_messages",
    inputs=(topics.MESSAGES.name,), projection="chat_messages", metrics_port_setting="projector_metrics_port",
)
MEDIA_PROJECTOR = Process(
    "media_projector", "projections.media", "projector", r"projector started: chat_media",
    "wa.media and enrichment results to chat_media; their text to chat_messages",
    inputs=(topics.MEDIA.name, *_ENRICHED), projection="chat_media", metrics_port_setting="media_projector_metrics_port",
)
EMBED = Process(
    "embed", "streams.embed", "stage", WORKER_READY, "texts to chunk vectors; wa.embeddings",
    inputs=(topics.MESSAGES.name, *_ENRICHED), outputs=(topics.EMBEDDINGS.name,), metrics_port_setting="stage_web_port",
)
EMBEDDINGS_PROJECTOR = Process(
    "embeddings_projector", "projections.embeddings", "projector", r"projector started: message_embeddings",
    "wa.embeddings to message_embeddings", inputs=(topics.EMBEDDINGS.name,), projection="message_embeddings",
    metrics_port_setting="embeddings_projector_metrics_port", former_names=("embeddings-projector",),
)
DEADLETTERS_PROJECTOR = Process(
    "deadletters_projector", "projections.deadletters", "projector", r"projector started: dead_letters",
    "wa.deadletter to dead_letters (one row per letter: open, retried, resolved)", inputs=(topics.DEADLETTER.name,),
    projection="dead_letters", metrics_port_setting="deadletters_projector_metrics_port",
)
ERASURES_PROJECTOR = Process(
    "erasures_projector", "projections.erasures", "projector", r"projector started: erasures",
    "wa.erasures applied: a contact's rows, media files and results cached only for them removed; erasures; "
    "wa.retention's cut-offs applied the same way; retention_cutoffs",
    inputs=(topics.ERASURES.name, topics.RETENTION.name), projection="erasures", metrics_port_setting="erasures_projector_metrics_port",
)
RECALL = Process("recall", "msgmem.readside", "http", r"Uvicorn running on", "recall API for agents")
ALERTS = Process("alerts", "msgmem.alerts", "ops", r"alerts watching", "Telegram / webhook alert per new dead letter")

#: In the order `msgmem dev` starts them.
ALL: tuple[Process, ...] = (
    INGEST, NORMALIZE, MEDIA, TRANSCRIBE, CAPTION, EXTRACT, PROJECTOR, MEDIA_PROJECTOR, EMBED, EMBEDDINGS_PROJECTOR,
    DEADLETTERS_PROJECTOR, ERASURES_PROJECTOR, RECALL, ALERTS,
)


def by_name(name: str) -> Process:
    """The process called ``name`` (or, for old dead letters, formerly called so)."""
    for process in ALL:
        if process.answers_to(name):
            return process
    raise KeyError(f"no process named {name!r}; known: {', '.join(p.name for p in ALL)}")
