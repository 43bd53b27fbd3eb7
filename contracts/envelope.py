"""The envelope every event shares, and the wire codec that applies upcasters.

After eventsourcing's ``StoredEvent``: an idempotency key (``event_id``), a stream id
(``chat_key``, the Kafka key, so one chat's events stay in order on one partition), when it
happened (tz-aware UTC), the wire ``type`` (a literal on each event class, never a class
path) and a ``schema_version``. Old bytes on a topic are never rewritten: a reader lifts
them to the current version with pure upcasters, one version step at a time.

Models ignore unknown fields (a tolerant reader), so adding an optional field does not
break consumers still on the previous code; anything else needs a new schema_version and
an upcaster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from contracts.errors import SafeError, describe_error

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]
UpcasterTable = Mapping[tuple[str, int], Upcaster]

E = TypeVar("E")


class EventDecodeError(SafeError, ValueError):
    """Bytes that are not a valid event of the topic: poison, for the dead-letter topic.
    Its message names the failing fields and error types, never a value."""


class Frozen(BaseModel):
    """Base of every contract model: immutable and tolerant of fields it does not know.

    The wire form always carries every field, so the serialization JSON Schema marks
    defaulted fields required too.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_serialization_defaults_required=True)


class Envelope(Frozen):
    """Fields every event carries. Subclasses add ``type: Literal[...]`` and their payload."""

    event_id: str
    schema_version: int = 1
    chat_key: str
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    provider: str
    channel_id: str
    delivery_id: str

    @field_validator("occurred_at", "received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


def to_bytes(event: BaseModel) -> bytes:
    return orjson.dumps(event.model_dump(mode="json"))


class EventCodec(Generic[E]):
    """orjson bytes <-> one topic's discriminated union, upcasting old versions on the way in.

    ``upcasters[(type, n)]`` turns a version-``n`` payload of that type into version
    ``n + 1``; the loop applies them until the current version (the ``schema_version``
    default of the type's model) and stamps the version after each step.
    """

    def __init__(self, union: Any, models: tuple[type[Frozen], ...], upcasters: UpcasterTable) -> None:
        self._adapter: TypeAdapter[E] = TypeAdapter(union)
        self._upcasters = upcasters
        self._current = {m.model_fields["type"].default: m.model_fields["schema_version"].default for m in models}

    def encode(self, event: BaseModel) -> bytes:
        return to_bytes(event)

    def decode(self, data: bytes) -> E:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventDecodeError(f"not JSON (at char {exc.pos})") from exc
        if not isinstance(payload, dict):
            raise EventDecodeError("an event must be a JSON object")
        try:
            return self._adapter.validate_python(self.upcast(payload))
        except ValidationError as exc:
            raise EventDecodeError(describe_error(exc)) from exc

    def upcast(self, payload: Payload) -> Payload:
        kind = payload.get("type")
        if kind not in self._current:
            raise EventDecodeError(f"unknown event type {kind!r}")
        current = self._current[kind]
        version = payload.get("schema_version", 1)
        if not isinstance(version, int) or version > current:
            raise EventDecodeError(f"{kind} schema_version {version!r} is newer than this reader's {current}")
        while version < current:
            step = self._upcasters.get((kind, version))
            if step is None:
                raise EventDecodeError(f"no upcaster for {kind} from schema_version {version}")
            payload = {**step(dict(payload)), "schema_version": version + 1}
            version += 1
        return payload
