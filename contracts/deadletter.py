"""wa.deadletter: inputs a stage could not process after its retries, kept whole.

A dead letter holds the failed record's coordinates (topic, partition, offset), its key,
value and headers exactly as read (base64; a value too large for this topic is left out
and flagged, and read again from its coordinates), the error (by type and field path,
never by value: ``contracts.errors.describe_error``) and the attempts made, so
`msgmem dlq retry` can run the stage again on the original input. A retry is logged too:
a ``DeadLetterRetried`` (who, when) before the stage runs, then its outcome, a
``DeadLetterResolved`` once the record went through, or a new ``DeadLettered`` with the same
id when it failed again. A letter's state is that of its latest event (``state_after``):
open, retried (outcome not logged yet) or resolved. Keyed by stage, so a stage's letters and
markers stay in order.

A stage that processes a record's items one by one (normalize: the messages of one
delivery) writes one letter per failed item, each with the item's path as ``part``; the
record itself is still kept whole, so a retry re-runs all of it. Letters written before
``part`` existed decode with ``part`` None and keep their ids.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import EventCodec, Frozen, Upcaster, to_bytes
from contracts.errors import describe_error, with_type

TOPIC = "wa.deadletter"
SCHEMA_VERSION = 1


class _OnTopic(Frozen):
    """An event of wa.deadletter: written as JSON, like every topic's."""

    def encode(self) -> bytes:
        return to_bytes(self)


class DeadLettered(_OnTopic):
    type: Literal["dead_lettered"] = "dead_lettered"
    schema_version: int = SCHEMA_VERSION
    # "stage:topic:partition:offset", or "stage:topic:partition:offset#part" for one failed
    # item of the record, so a re-run of the same failure is one letter
    dead_letter_id: str
    stage: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    headers: list[tuple[str, str]]  # header name, base64 value
    error_type: str
    error: str
    attempts: int
    failed_at: AwareDatetime
    # Set when the original value did not fit the dead-letter topic: the bytes are then read
    # again from (topic, partition, offset) on retry, while the input topic still holds them.
    value_omitted: bool = False
    value_bytes: int | None = None
    part: str | None = None  # the failed item's path in the record ("messages[2]"); None: the whole record

    @classmethod
    def of(
        cls, stage: str, *, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...], error: BaseException, attempts: int,
        part: str | None = None,
    ) -> "DeadLettered":
        return cls(
            dead_letter_id=letter_id(stage, topic, partition, offset, part),
            stage=stage, topic=topic, partition=partition, offset=offset, part=part,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            value_b64=base64.b64encode(value or b"").decode(),
            headers=[(name, base64.b64encode(raw or b"").decode()) for name, raw in headers],
            error_type=type(error).__name__, error=describe_error(error)[:4000], attempts=attempts,
            failed_at=datetime.now(UTC),
        )

    def without_value(self) -> "DeadLettered":
        """This letter with its value left out, for an input too large for wa.deadletter."""
        return self.model_copy(
            update={"value_b64": "", "value_omitted": True, "value_bytes": len(base64.b64decode(self.value_b64))}
        )

    @property
    def summary(self) -> str:
        """``Type: detail`` for people."""
        return with_type(self.error_type, self.error)

    @property
    def key(self) -> bytes | None:
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None

    @property
    def value(self) -> bytes:
        return base64.b64decode(self.value_b64)

    @property
    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [(name, base64.b64decode(raw)) for name, raw in self.headers]

    @classmethod
    def decode(cls, data: bytes) -> "DeadLettered":
        return cls.model_validate_json(data)


def letter_id(stage: str, topic: str, partition: int, offset: int, part: str | None = None) -> str:
    """A letter's id: one per record, or per failed item of it when ``part`` is set."""
    base = f"{stage}:{topic}:{partition}:{offset}"
    return f"{base}#{part}" if part else base


LetterState = Literal["open", "retried", "resolved"]
#: ``retried_by`` of markers written before retries named who ran them.
UNKNOWN_OPERATOR = "unknown"


class _Marker(_OnTopic):
    """What happened to the letter ``dead_letter_id`` of ``stage`` (keyed by stage like it)."""

    dead_letter_id: str
    stage: str


class DeadLetterRetried(_Marker):
    """`msgmem dlq retry` is running the letter's stage again on its record: who asked, and when.

    schema_version 1 markers were written only after the retry went through, with ``outputs``
    and no ``retried_by``; the upcaster names them ``UNKNOWN_OPERATOR`` and keeps ``outputs``,
    which resolves the letter as a ``DeadLetterResolved`` would."""

    type: Literal["dead_letter_retried"] = "dead_letter_retried"
    schema_version: int = 2
    retried_by: str
    retried_at: AwareDatetime
    outputs: int | None = None  # schema_version 1 only: the retry went through with this many outputs


class DeadLetterResolved(_Marker):
    """The retried record went through: the stage's ``outputs`` are acknowledged (for a
    projector's letter, the record itself, appended to its topic again for the live projector)."""

    type: Literal["dead_letter_resolved"] = "dead_letter_resolved"
    schema_version: int = 1
    outputs: int
    resolved_at: AwareDatetime


DeadLetterEvent = Annotated[DeadLettered | DeadLetterRetried | DeadLetterResolved, Field(discriminator="type")]
AnyLetterEvent = DeadLettered | DeadLetterRetried | DeadLetterResolved

UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("dead_letter_retried", 1): lambda payload: {**payload, "retried_by": UNKNOWN_OPERATOR},
}
CODEC: EventCodec[AnyLetterEvent] = EventCodec(
    DeadLetterEvent, (DeadLettered, DeadLetterRetried, DeadLetterResolved), UPCASTERS
)


def decode(data: bytes) -> AnyLetterEvent:
    """Raises ``EventDecodeError`` (a ``ValueError``) on bytes that are none of them."""
    return CODEC.decode(data)


def state_after(event: AnyLetterEvent) -> LetterState:
    """A letter's state once ``event`` is the latest about it."""
    if isinstance(event, DeadLettered):
        return "open"
    if isinstance(event, DeadLetterRetried) and event.outputs is None:
        return "retried"
    return "resolved"
