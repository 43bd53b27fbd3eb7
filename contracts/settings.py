"""The one typed settings object. Nothing else in the project reads ``os.environ``.

Every field is read from the environment (upper-case name) or from ``.env``;
``.env.example`` lists them all. Build it once per process in the composition root
(``Settings()``) and pass it down; never at import time.
"""

from __future__ import annotations

import json
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from dotenv import dotenv_values
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts.origins import Origin, describe, parse_origin
from contracts.secret_policy import production_problems
from contracts.topics import ALL_TOPICS, RAW, RAW_HEADERS_ALLOWANCE, TopicSpec, retention_of
from contracts.usage import DEFAULT_PRICES, Price


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def _default_state_dir() -> Path:
    return Path.home() / ".local" / "share" / "msgmem"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "msgmem"


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting is named, its value (maybe a secret) never shown.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    environment: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"

    # Kafka / Redpanda
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_client_id: str = "msgmem"
    kafka_replication_factor: int = Field(1, ge=1)
    kafka_producer_linger_ms: int = Field(1, ge=0)
    kafka_request_timeout_ms: int = Field(10_000, ge=1_000)
    # The largest record the cluster accepts, when lower than the topics' declared limits
    # (hosted Kafka/Redpanda: often 1 MiB). Caps every topic and ingest's body size.
    kafka_max_message_bytes: int | None = Field(None, ge=64 * 1024)
    # Consumer group membership of the stream stages: a worker that dies is replaced after
    # the session timeout; heartbeats go out every interval.
    kafka_session_timeout_ms: int = Field(10_000, ge=2_000)
    kafka_heartbeat_interval_ms: int = Field(2_000, ge=500)
    # Static group membership (KIP-345): a worker restarted under the same id takes its
    # partitions back at once, instead of after the session timeout. Unique per running
    # worker and stable across its restarts (a StatefulSet pod's name, a compose service of
    # one replica; `msgmem dev` sets one per service). Unset: dynamic membership.
    kafka_group_instance_id: str | None = None
    # Every consumer group (a stage's Faust app id, a projector's group) is this prefix + the
    # process name (contracts/processes.py): tests give each run groups of its own.
    kafka_group_prefix: str = "msgmem-"
    # Every topic on the broker is this prefix + its declared name (contracts/topics.py), so
    # several deployments (or test runs) can share one cluster. Code and stored coordinates
    # (dead letters, projection_offsets) use the declared names; only Kafka clients see the
    # prefixed ones. Changing it on a running deployment means new, empty topics.
    kafka_topic_prefix: str = Field("", max_length=200, pattern=r"^[A-Za-z0-9._-]*$")
    # How long the topics holding personal content keep it (contracts/topics.py, ``content``):
    # wa.raw's raw deliveries RAW_RETENTION_DAYS; any content topic its TOPIC_RETENTION_DAYS
    # entry ("wa.deadletter=90,wa.messages=0"); 0 keeps forever; the rest keep what is declared
    # (forever: the derived topics are what rebuilds read). Applied when topics are created and
    # by `msgmem topics` to existing ones.
    raw_retention_days: int = Field(30, ge=0)
    topic_retention_days: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)

    # Postgres / Supabase
    # Carries the password: kept out of repr(settings), which tracebacks and debug logs print.
    database_url: str = Field("postgresql://postgres@127.0.0.1:5432/postgres", repr=False)
    database_statement_cache_size: int = Field(100, ge=0)

    # Local stack (`msgmem dev` and the tests)
    state_dir: Path = Field(default_factory=_default_state_dir)
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    local_kafka_version: str = "4.1.1"
    local_kafka_port: int = Field(9092, ge=0)
    local_postgres_port: int = Field(5432, ge=0)

    # Ingest
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(8080, ge=0)
    ingest_max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    # Per provider, below INGEST_MAX_BODY_BYTES (unset: that). Meta documents webhook
    # payloads of up to 3 MB; Whapi, Evolution (whose webhook_base64 mode inlines media)
    # and outbound senders document none.
    ingest_meta_max_body_bytes: int | None = Field(3 * 1024 * 1024, ge=1024)
    ingest_whapi_max_body_bytes: int | None = Field(None, ge=1024)
    ingest_evolution_max_body_bytes: int | None = Field(None, ge=1024)
    ingest_outbound_max_body_bytes: int | None = Field(None, ge=1024)
    # Deliveries handled at once (503 + Retry-After above), and how long a body may take to arrive (408).
    ingest_max_in_flight: int = Field(256, ge=1)
    ingest_body_timeout_seconds: float = Field(15.0, gt=0)
    ingest_publish_timeout_seconds: float = Field(5.0, gt=0)
    ingest_retry_after_seconds: int = Field(5, ge=1)
    ingest_api_key: SecretStr | None = None
    whapi_token: SecretStr | None = None
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    evolution_api_key: SecretStr | None = None
    # Declarative providers: YAML mapping files (comma-separated paths), each served at
    # /webhooks/<its name> and read by the normalize stage (contracts/provider_mapping.py).
    # Their secrets are in the environment variables the files name (named_secret).
    declarative_providers: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    # Normalize stage
    opt_out_keywords: Annotated[list[str], NoDecode] = Field(default_factory=list)
    opt_in_keywords: Annotated[list[str], NoDecode] = Field(default_factory=list)
    business_numbers: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Stream stages (faust)
    stage_max_attempts: int = Field(3, ge=1)
    stage_retry_min_seconds: float = Field(1.0, ge=0)
    stage_retry_max_seconds: float = Field(8.0, ge=0)
    stage_web_port: int = Field(0, ge=0)
    stage_web_host: str = "127.0.0.1"

    # Projector
    projector_batch_size: int = Field(2000, ge=1)
    projector_batch_timeout_ms: int = Field(200, ge=1)
    # Dead-letter alerts (msgmem.alerts)
    telegram_bot_token: SecretStr | None = None
    telegram_chat_id: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    alert_webhook_url: str | None = None

    projector_metrics_port: int = Field(0, ge=0)
    projector_metrics_host: str = "127.0.0.1"  # where every projector's metrics endpoint listens
    media_projector_metrics_port: int = Field(0, ge=0)
    deadletters_projector_metrics_port: int = Field(0, ge=0)
    erasures_projector_metrics_port: int = Field(0, ge=0)
    deleted_messages: Literal["keep", "redact"] = "keep"
    users_table: str | None = None

    # Media stage (streams/media): download, verify, store
    media_storage: Literal["local", "supabase"] = "local"
    media_local_dir: Path | None = None  # None: STATE_DIR/media
    media_bucket: str = "chat-media"
    media_max_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    media_retention_days: int = Field(90, ge=0)
    media_signing_key: SecretStr | None = None
    media_local_url_base: str | None = None
    media_concurrency: int = Field(4, ge=1)
    media_max_attempts: int = Field(3, ge=1)
    media_retry_min_seconds: float = Field(1.0, ge=0)
    media_retry_max_seconds: float = Field(8.0, ge=0)
    media_download_timeout_seconds: float = Field(60.0, gt=0)
    media_sweep_interval_seconds: float = Field(3600.0, ge=0)
    # Retention by policy (streams/media/retention_sweep.py): None or 0 keeps messages forever;
    # transcripts, AI captions and extracted text are cleared after 30 days (0 keeps them forever)
    message_retention_days: int | None = Field(None, ge=0)
    transcript_retention_days: int = Field(30, ge=0)
    supabase_url: str | None = None
    supabase_service_key: SecretStr | None = None
    whapi_api_url: str = "https://gate.whapi.cloud"
    whapi_api_token: SecretStr | None = None
    whapi_media_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    meta_graph_url: str = "https://graph.facebook.com"
    meta_graph_version: str = "v21.0"
    meta_access_token: SecretStr | None = None
    meta_media_hosts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["lookaside.fbsbx.com"])
    evolution_api_url: str | None = None
    # Origins (scheme://host:port) media may be fetched from although they are not https on
    # port 443 or resolve to a private address: a self-hosted API on a private network, or
    # the tests' local fakes. Each must still be the API's origin or on a *_MEDIA_HOSTS list.
    media_trusted_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Enrichment stages (streams/transcribe, streams/caption, streams/extract)
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_timeout_seconds: float = Field(60.0, gt=0)
    enrichment_retry_after_max_seconds: float = Field(60.0, ge=0)
    enable_audio_transcription: bool = True
    transcription_model: str = "gpt-4o-mini-transcribe"
    transcription_max_bytes: int = Field(25 * 1024 * 1024, ge=1)
    transcribe_concurrency: int = Field(8, ge=1)
    transcribe_max_attempts: int = Field(5, ge=1)
    transcribe_retry_min_seconds: float = Field(2.0, ge=0)
    transcribe_retry_max_seconds: float = Field(32.0, ge=0)
    enable_vision_captions: bool = True
    vision_model: str = "gpt-4o-mini"
    vision_image_detail: Literal["low", "high", "auto"] = "low"
    caption_max_bytes: int = Field(20 * 1024 * 1024, ge=1)
    caption_concurrency: int = Field(8, ge=1)
    caption_max_attempts: int = Field(3, ge=1)
    caption_retry_min_seconds: float = Field(2.0, ge=0)
    caption_retry_max_seconds: float = Field(16.0, ge=0)
    pdf_extraction_model: str = "gpt-4o-mini"
    enable_pdf_vision_pages: bool = True
    pdf_text_min_chars: int = Field(16, ge=1)
    pdf_max_model_pages: int = Field(20, ge=0)
    pdf_render_dpi: int = Field(110, ge=36, le=300)
    extract_max_bytes: int = Field(50 * 1024 * 1024, ge=1)
    extract_concurrency: int = Field(4, ge=1)
    extract_max_attempts: int = Field(3, ge=1)
    extract_retry_min_seconds: float = Field(2.0, ge=0)
    extract_retry_max_seconds: float = Field(16.0, ge=0)

    # Embeddings (streams/embed, projections/embeddings) and recall (projections/recall)
    embeddings_model: str = "text-embedding-3-small"
    embeddings_dimensions: int = Field(1536, ge=1)
    embeddings_tokenizer: str = "cl100k_base"
    embeddings_chunk_size_tokens: int = Field(700, ge=1, le=8191)
    embeddings_chunk_overlap_tokens: int = Field(140, ge=0)
    embeddings_max_chunks: int = Field(50, ge=1)
    embeddings_batch_max_inputs: int = Field(256, ge=1, le=2048)
    embeddings_batch_max_tokens: int = Field(250_000, ge=1, le=300_000)
    embeddings_batch_wait_ms: int = Field(20, ge=0)
    embeddings_max_requests: int = Field(4, ge=1)
    embeddings_cache_entries: int = Field(4096, ge=0)
    embed_concurrency: int = Field(256, ge=1)
    embed_max_attempts: int = Field(5, ge=1)
    embed_retry_min_seconds: float = Field(1.0, ge=0)
    embed_retry_max_seconds: float = Field(30.0, ge=0)
    embeddings_projector_metrics_port: int = Field(0, ge=0)
    enable_vector_recall: bool = True
    embeddings_recall_limit: int = Field(50, ge=0)
    recall_min_similarity: float = Field(0.3, ge=-1, le=1)
    recall_exact_chat_chunks: int = Field(20_000, ge=0)
    recall_ef_search: int = Field(200, ge=1, le=1000)
    recall_api_key: SecretStr | None = None
    # Key of the recall service's /admin routes (POST /admin/erasures); unset: they answer 401.
    admin_api_key: SecretStr | None = None
    # How long `msgmem erase` and POST /admin/erasures wait for the erasure to be applied.
    erasure_wait_seconds: float = Field(60.0, gt=0)
    recall_host: str = "127.0.0.1"
    recall_port: int = Field(8090, ge=0)
    # Agent context (GET /chats/{chat}/context, get_context): the last messages shown, the
    # token budget (counted with EMBEDDINGS_TOKENIZER) and the recall snippets considered.
    context_window_messages: int = Field(20, ge=1, le=500)
    context_max_tokens: int = Field(4000, ge=1, le=1_000_000)
    context_recall_snippets: int = Field(8, ge=0, le=50)
    # Lifetime of the signed media URLs the memory API hands out.
    media_url_ttl_seconds: int = Field(300, ge=10, le=7 * 24 * 3600)
    # `msgmem mcp --transport http`: where the MCP server listens (RECALL_API_KEY guards it).
    mcp_host: str = "127.0.0.1"
    mcp_port: int = Field(8091, ge=0)
    # The web console (/console on the recall service): the operator key its login page asks
    # for, the key that signs its session cookie, and how long a session lasts. Without both
    # keys every console page answers 503 (off).
    console_api_key: SecretStr | None = None
    console_session_key: SecretStr | None = None
    console_session_seconds: int = Field(8 * 3600, ge=60, le=30 * 24 * 3600)
    # /docs and /openapi.json of ingest and recall; unset: served except in production.
    serve_openapi: bool | None = None

    # What memory costs: USD list prices per model, JSON ({"gpt-4o-mini": {"input_per_1m_tokens":
    # 0.15, "output_per_1m_tokens": 0.6}}; also per_audio_minute, per_page, per_call), merged
    # over the defaults (contracts/usage.py) for the stages' spend metrics and `msgmem status`.
    ai_prices: Annotated[dict[str, Price], NoDecode] = Field(default_factory=lambda: dict(DEFAULT_PRICES))

    @field_validator("opt_out_keywords", "opt_in_keywords", "business_numbers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and not value.strip() and info.field_name in cls._secret_fields():
            return None
        return value

    @field_validator(
        "kafka_max_message_bytes", "ingest_meta_max_body_bytes", "ingest_whapi_max_body_bytes",
        "ingest_evolution_max_body_bytes", "ingest_outbound_max_body_bytes", "serve_openapi", "message_retention_days",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("topic_retention_days", mode="before")
    @classmethod
    def _topic_days(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("expected topic=days pairs separated by commas")
        return {name.strip(): days.strip() for name, days in pairs}

    @field_validator("topic_retention_days", mode="after")
    @classmethod
    def _content_topics_only(cls, value: dict[str, int]) -> dict[str, int]:
        content = {spec.name for spec in ALL_TOPICS if spec.content}
        for name, days in value.items():
            if name not in content:
                raise ValueError(f"a retention applies only to the topics holding content: {', '.join(sorted(content))}")
            if days < 0:
                raise ValueError("days must be 0 (forever) or more")
        return value

    def retention_ms(self, spec: TopicSpec) -> int:
        """The retention the policy gives ``spec`` (``contracts.topics.retention_of``)."""
        return retention_of(spec, self.raw_retention_days, self.topic_retention_days)

    @field_validator("ai_prices", mode="before")
    @classmethod
    def _prices_json(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("ai_prices", mode="after")
    @classmethod
    def _prices_over_defaults(cls, value: dict[str, Price]) -> dict[str, Price]:
        return DEFAULT_PRICES | value

    @field_validator("declarative_providers", mode="before")
    @classmethod
    def _path_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(item.strip()).expanduser() for item in value.split(",") if item.strip()]
        return value

    def named_secret(self, variable: str) -> SecretStr | None:
        """The secret in environment variable ``variable`` (or ``.env``), for a provider mapping
        that names it; None when unset or blank. Read when the mapping is loaded, at start-up."""
        value = os.environ.get(variable)
        if value is None:
            env_file = self.model_config.get("env_file")
            if isinstance(env_file, str) and Path(env_file).is_file():
                value = dotenv_values(env_file).get(variable)
        return SecretStr(value) if value and value.strip() else None

    @field_validator("whapi_media_hosts", "meta_media_hosts", "media_trusted_origins", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip().lower() for item in value.split(",") if item.strip()]
        return value

    @field_validator("media_trusted_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        """Normalised to scheme://host:port; a path, user info or another scheme is refused."""
        try:
            return [describe(parse_origin(item)) for item in value]
        except ValueError as exc:
            raise ValueError(f"MEDIA_TRUSTED_ORIGINS: {exc}") from None

    @property
    def media_trusted(self) -> frozenset[Origin]:
        return frozenset(parse_origin(item) for item in self.media_trusted_origins)

    @model_validator(mode="after")
    def _overlap_below_chunk_size(self) -> "Settings":
        if self.embeddings_chunk_overlap_tokens >= self.embeddings_chunk_size_tokens:
            raise ValueError("EMBEDDINGS_CHUNK_OVERLAP_TOKENS must be smaller than EMBEDDINGS_CHUNK_SIZE_TOKENS")
        return self

    @property
    def media_dir(self) -> Path:
        return (self.media_local_dir or self.state_dir / "media").expanduser()

    @property
    def whapi_media_token(self) -> SecretStr | None:
        """Whapi's API token; many set the webhook header to the same token, so it falls back to WHAPI_TOKEN."""
        return self.whapi_api_token or self.whapi_token

    @field_validator("users_table")
    @classmethod
    def _qualified_identifier(cls, value: str | None) -> str | None:
        """Interpolated into SQL, so only a plain (optionally schema-qualified) identifier."""
        if value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", value):
            raise ValueError("USERS_TABLE must be a table name like users or public.users")
        return value or None

    @field_validator("state_dir", "cache_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _refuse_weak_secrets_in_production(self) -> "Settings":
        if self.environment is Environment.PRODUCTION:
            secrets = [(n.upper(), v.get_secret_value()) for n in self._secret_fields() if (v := getattr(self, n))]
            problems = production_problems(secrets, self.database_url)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @classmethod
    def _secret_fields(cls) -> list[str]:
        return [n for n, f in cls.model_fields.items() if f.annotation in (SecretStr, SecretStr | None)]

    @property
    def openapi_served(self) -> bool:
        """Whether ingest and recall serve /docs and /openapi.json (SERVE_OPENAPI; unset: not in production)."""
        return self.serve_openapi if self.serve_openapi is not None else self.environment is not Environment.PRODUCTION

    @property
    def ingest_body_limit(self) -> int:
        """The largest webhook body ingest accepts: INGEST_MAX_BODY_BYTES, lowered so that a
        delivery plus its headers always fits wa.raw's record limit (so a 200 is never given
        for a delivery the broker would refuse)."""
        return min(self.ingest_max_body_bytes, RAW.limit(self.kafka_max_message_bytes) - RAW_HEADERS_ALLOWANCE)

    def ingest_body_limit_of(self, provider: str, own: int | None = None) -> int:
        """The largest body of ``provider`` (whapi, meta, evolution, outbound): its own cap
        (INGEST_<PROVIDER>_MAX_BODY_BYTES, or ``own``: a declarative provider's
        ``max_body_bytes``) if set, never above ``ingest_body_limit``."""
        own = own or getattr(self, f"ingest_{provider}_max_body_bytes", None)
        return min(own, self.ingest_body_limit) if own else self.ingest_body_limit

    @property
    def database_is_transaction_pooler(self) -> bool:
        """Supabase's transaction pooler (port 6543) cannot keep prepared statements."""
        return ":6543/" in self.database_url

    def topic(self, name: str) -> str:
        """The broker's name of the declared topic ``name``: KAFKA_TOPIC_PREFIX + the name."""
        return self.kafka_topic_prefix + name

    def declared_topic(self, physical: str) -> str:
        """The declared name of a topic the broker calls ``physical`` (the inverse of :meth:`topic`)."""
        prefix = self.kafka_topic_prefix
        if prefix and physical.startswith(prefix):
            return physical[len(prefix):]
        return physical

    def consumer_group(self, name: str) -> str:
        """The consumer group of the process ``name`` (a stage's Faust app id): the prefix + the name, dashed."""
        return self.kafka_group_prefix + name.replace("_", "-")

    @property
    def statement_cache_size(self) -> int:
        return 0 if self.database_is_transaction_pooler else self.database_statement_cache_size

