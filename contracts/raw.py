"""wa.raw: one record per provider delivery, the body kept byte for byte.

The Kafka value is the HTTP body exactly as received (so signatures can be re-verified
and nothing is lost to re-encoding), save for secrets ingest took out of it: Evolution's
``apikey`` value becomes ``"[redacted]"``, and header ``mm-redacted`` names what was taken
(``apikey``). Everything else travels in record headers. The key is ``provider:channel``
so one channel's deliveries stay in order.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

TOPIC = "wa.raw"
SCHEMA_VERSION = 1

H_DELIVERY_ID = "mm-delivery-id"
H_PROVIDER = "mm-provider"
H_CHANNEL = "mm-channel"
H_RECEIVED_AT = "mm-received-at"
H_SCHEMA_VERSION = "mm-schema-version"
H_REDACTED = "mm-redacted"  # comma-separated body members whose values ingest redacted
H_HTTP_PREFIX = "http-"

KafkaHeaders = list[tuple[str, bytes]]


class RawDelivery(BaseModel):
    """A delivery as ingest accepted it. ``headers`` are the HTTP headers that matter, lower-case."""

    model_config = ConfigDict(frozen=True)

    delivery_id: str
    provider: str
    channel: str | None = None
    received_at: datetime
    headers: dict[str, str] = Field(default_factory=dict)
    body: bytes
    #: members of the body whose values ingest replaced before appending (Evolution: apikey)
    redacted: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    @field_validator("received_at")
    @classmethod
    def _tz_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        return value.astimezone(UTC)

    @property
    def key(self) -> bytes:
        return f"{self.provider}:{self.channel or '-'}".encode()

    def kafka_headers(self) -> KafkaHeaders:
        headers: KafkaHeaders = [
            (H_DELIVERY_ID, self.delivery_id.encode()),
            (H_PROVIDER, self.provider.encode()),
            (H_RECEIVED_AT, self.received_at.isoformat().encode()),
            (H_SCHEMA_VERSION, str(self.schema_version).encode()),
        ]
        if self.channel:
            headers.append((H_CHANNEL, self.channel.encode()))
        if self.redacted:
            headers.append((H_REDACTED, ",".join(self.redacted).encode()))
        headers.extend((H_HTTP_PREFIX + name, value.encode()) for name, value in sorted(self.headers.items()))
        return headers

    @classmethod
    def from_kafka(cls, value: bytes, headers: KafkaHeaders) -> "RawDelivery":
        """Rebuild a delivery from a wa.raw record; raises ``ValueError`` on a record that is not one."""
        meta: dict[str, str] = {}
        http: dict[str, str] = {}
        for name, raw in headers:
            text = raw.decode("utf-8", "replace") if raw is not None else ""
            if name.startswith(H_HTTP_PREFIX):
                http[name[len(H_HTTP_PREFIX):]] = text
            else:
                meta[name] = text
        missing = [h for h in (H_DELIVERY_ID, H_PROVIDER, H_RECEIVED_AT) if h not in meta]
        if missing:
            raise ValueError(f"wa.raw record lacks headers {missing}")
        return cls(
            delivery_id=meta[H_DELIVERY_ID],
            provider=meta[H_PROVIDER],
            channel=meta.get(H_CHANNEL),
            received_at=datetime.fromisoformat(meta[H_RECEIVED_AT]),
            headers=http,
            body=value,
            redacted=tuple(m for m in meta.get(H_REDACTED, "").split(",") if m),
            schema_version=int(meta.get(H_SCHEMA_VERSION, SCHEMA_VERSION)),
        )
