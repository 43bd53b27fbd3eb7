"""wa.retention: the retention policies, applied through events.

The retention sweep (``streams.media.retention_sweep``: `msgmem retention sweep` and the media
worker's timer) reads the tables, and for every chat with something past a policy appends
one event here; the erasures projector (``projections.retention``) applies it to every table
in one transaction and records the chat's cut-off in ``retention_cutoffs``. Nothing else
writes those rows: the log is the only writer.

- ``MessagesExpired`` (MESSAGE_RETENTION_DAYS): every message of the chat received before
  ``before`` goes, with its versions, its media rows (and files no other row uses), its
  chunks and its embedding state;
- ``TextsCleared`` (TRANSCRIPT_RETENTION_DAYS): the text derived from the media of every
  message of the chat received before ``before`` is cleared: transcripts, AI image
  descriptions, extracted document text (chat_media and chat_messages) and their chunks.
  The sender's own text and caption stay (they are the message).

Both are *cut-offs*, not lists of ids: the age of everything is the ``received_at`` of the
message it is about, which every event about a message carries in its envelope (media,
enrichment and embedding events copy their message's). So the cut-off also covers what is
logged again later: the projectors, stages, `msgmem replay` and `projections rebuild` read
the cut-offs with the erasure ledger (``contracts.erasure.Ledger``) and leave an expired
message's events alone, and strip the text of a cleared one, so neither comes back from a
replay of any stage nor from a rebuild. A cut-off only moves forward.

Keyed by chat key, like every other event about a chat. Not compacted: both kinds share the
key, and compaction would keep only the latest of the two; each event is small and one is
written per chat per sweep that finds something to do.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator

from contracts.envelope import EventCodec, Frozen, to_bytes
from contracts.ids import ID_NAMESPACE

TOPIC = "wa.retention"
SCHEMA_VERSION = 1

Policy = Literal["messages", "texts"]


def event_id(kind: str, chat_key: str, before: datetime) -> str:
    """The same chat, kind and cut-off: the same id (a sweep repeated after a crash)."""
    parts = (kind, chat_key, before.astimezone(UTC).isoformat())
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


class _Cutoff(Frozen):
    """A policy applied to one chat: everything about its messages received before ``before``.

    ``swept_at`` is when the sweep ran, ``days`` the policy it applied (``before`` =
    ``swept_at`` - ``days``), ``messages`` how many messages it saw past the cut-off (for the
    operator; the projector applies the cut-off, not the count)."""

    event_id: str
    schema_version: int = SCHEMA_VERSION
    chat_key: str
    before: AwareDatetime
    swept_at: AwareDatetime
    days: int = Field(ge=0)
    messages: int = Field(0, ge=0)

    @field_validator("before", "swept_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def key(self) -> bytes:
        return self.chat_key.encode()

    def encode(self) -> bytes:
        return to_bytes(self)


class MessagesExpired(_Cutoff):
    """MESSAGE_RETENTION_DAYS: the chat's messages received before ``before`` are removed."""

    type: Literal["messages_expired"] = "messages_expired"


class TextsCleared(_Cutoff):
    """TRANSCRIPT_RETENTION_DAYS: transcripts, AI captions and extracted text of the chat's
    messages received before ``before`` are cleared (the rows stay)."""

    type: Literal["texts_cleared"] = "texts_cleared"


RetentionEvent = Annotated[MessagesExpired | TextsCleared, Field(discriminator="type")]
EVENT_MODELS = (MessagesExpired, TextsCleared)
CODEC: EventCodec[RetentionEvent] = EventCodec(RetentionEvent, EVENT_MODELS, {})


def new_event(policy: Policy, chat_key: str, *, before: datetime, swept_at: datetime, days: int,
              messages: int = 0) -> MessagesExpired | TextsCleared:  # fmt: skip
    model = MessagesExpired if policy == "messages" else TextsCleared
    kind = model.model_fields["type"].default
    return model(event_id=event_id(kind, chat_key, before), chat_key=chat_key, before=before, swept_at=swept_at,
                 days=days, messages=messages)  # fmt: skip


def decode(data: bytes) -> MessagesExpired | TextsCleared:
    """Bytes from wa.retention -> the current model; raises ``EventDecodeError`` on poison."""
    return CODEC.decode(data)
