"""The rows a batch of wa.messages events turns into, and how two facts about one row merge.

Every merge here is the in-memory twin of an SQL merge in ``projections.messages.sql``
(the SQL one applies across batches, this one within a batch, because one statement cannot
touch a row twice). Both are commutative and idempotent where the log can reorder or repeat
facts: statuses, edits, deletions, reactions, consent, names, last-activity times.
A message's own fields are first-writer-wins with gaps filled by later copies (a duplicate
of the same message, or its provider echo after ingest's outbound record).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

# Rank of delivery statuses: a status only replaces a lower one. 'failed' sits above
# 'sent' (the send did not get through) but below 'delivered': a receipt proves delivery,
# and providers do report a transient failure before delivering.
STATUS_ORDER: tuple[str, ...] = ("pending", "sent", "failed", "delivered", "read", "played")
UNSUPPORTED = "unsupported"


def status_rank(status: str | None) -> int:
    return STATUS_ORDER.index(status) + 1 if status else 0


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _least_str(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(slots=True)
class ChatRow:
    chat_key: str
    provider: str
    channel_id: str
    chat_id: str
    contact_phone: str | None = None
    contact_name: str | None = None
    group_name: str | None = None
    profile_at: datetime | None = None
    is_group: bool = False
    consent_state: str | None = None
    consent_changed_at: datetime | None = None
    last_inbound_at: datetime | None = None
    last_outbound_at: datetime | None = None
    last_message_at: datetime | None = None

    def see(self, *, is_group: bool, contact_phone: str | None, contact_name: str | None,
            group_name: str | None, at: datetime) -> None:  # fmt: skip
        self.is_group = self.is_group or is_group
        self.contact_phone = self.contact_phone or contact_phone
        if contact_name is None and group_name is None:
            return
        if self.profile_at is None or at >= self.profile_at:
            self.contact_name = contact_name or self.contact_name
            self.group_name = group_name or self.group_name
            self.profile_at = at
        else:
            self.contact_name = self.contact_name or contact_name
            self.group_name = self.group_name or group_name

    def consent(self, state: str, at: datetime) -> None:
        """Latest wins; at the same instant opting out wins (the cautious reading)."""
        current = self.consent_changed_at
        if current is None or at > current or (at == current and state == "opted_out"):
            self.consent_state, self.consent_changed_at = state, at

    def message_at(self, direction: str, at: datetime) -> None:
        self.last_message_at = _later(self.last_message_at, at)
        if direction == "inbound":
            self.last_inbound_at = _later(self.last_inbound_at, at)
        else:
            self.last_outbound_at = _later(self.last_outbound_at, at)


@dataclass(slots=True)
class MessageRow:
    id: str
    chat_key: str
    provider: str
    channel_id: str
    provider_message_id: str
    origin: str
    direction: str
    message_type: str
    provider_timestamp: datetime
    received_at: datetime
    raw_event: str | None
    source_topic: str
    source_partition: int
    source_offset: int
    sender_id: str | None = None
    sender_name: str | None = None
    body: str | None = None
    caption: str | None = None
    reply_to_provider_message_id: str | None = None
    forwarded: bool = False
    template: str | None = None

    def absorb(self, other: MessageRow) -> None:
        """Another copy of this message: fill gaps, or take it whole over an 'unsupported' one."""
        upgrade = self.message_type == UNSUPPORTED and other.message_type != UNSUPPORTED
        for name in _FILLABLE:
            first, then = (other, self) if upgrade else (self, other)
            value = getattr(first, name)
            setattr(self, name, value if value is not None else getattr(then, name))
        self.forwarded = self.forwarded or other.forwarded
        if upgrade:
            for name in _TAKEN_ON_UPGRADE:
                setattr(self, name, getattr(other, name))


_FILLABLE = ("sender_id", "sender_name", "body", "caption", "reply_to_provider_message_id", "template")
_TAKEN_ON_UPGRADE = ("message_type", "raw_event", "source_topic", "source_partition", "source_offset")


@dataclass(frozen=True, slots=True)
class ConsentRow:
    """One opt-out or opt-in, kept so a message is judged by the consent of its own time."""

    event_id: str
    chat_key: str
    state: str
    occurred_at: datetime
    message_id: str | None
    source_topic: str
    source_partition: int
    source_offset: int


@dataclass(frozen=True, slots=True)
class Reaction:
    emoji: str | None  # None: removed (a tombstone, so an older "added" cannot revive it)
    name: str | None
    at: datetime

    def rank(self) -> tuple[datetime, bool, str]:
        """Latest wins; at the same instant a removal wins, then the greater emoji (any fixed rule)."""
        return (self.at, self.emoji is None, self.emoji or "")

    def to_json(self) -> dict[str, Any]:
        return {"emoji": self.emoji, "name": self.name, "at": self.at.isoformat()}


@dataclass(slots=True)
class MessageUpdate:
    """Everything a batch says about one message besides the message itself."""

    message_id: str
    chat_key: str
    status: str | None = None
    status_at: datetime | None = None
    status_error: str | None = None
    edit_text: str | None = None
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    reactions: dict[str, Reaction] = field(default_factory=dict)

    def status_seen(self, status: str, at: datetime, error: str | None) -> None:
        new, old = status_rank(status), status_rank(self.status)
        if new > old:
            self.status, self.status_at, self.status_error = status, at, error
        elif new == old:
            self.status_at = _earlier(self.status_at, at)
            self.status_error = _least_str(self.status_error, error)

    def edit_seen(self, text: str | None, at: datetime) -> None:
        """Latest edit by occurred_at; an exact tie goes to the greater text (any fixed rule)."""
        if self.edited_at is None or (at, text or "") > (self.edited_at, self.edit_text or ""):
            self.edit_text, self.edited_at = text, at

    def deletion_seen(self, at: datetime) -> None:
        self.deleted_at = _earlier(self.deleted_at, at)

    def reaction_seen(self, reactor: str, reaction: Reaction) -> None:
        current = self.reactions.get(reactor)
        if current is None or reaction.rank() > current.rank():
            self.reactions[reactor] = reaction

    def merge(self, other: MessageUpdate) -> None:
        if other.status is not None and other.status_at is not None:
            self.status_seen(other.status, other.status_at, other.status_error)
        if other.edited_at is not None:
            self.edit_seen(other.edit_text, other.edited_at)
        if other.deleted_at is not None:
            self.deletion_seen(other.deleted_at)
        for reactor, reaction in other.reactions.items():
            self.reaction_seen(reactor, reaction)


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One version of a message's text (``chat_message_versions``): the message's own text
    ('original') or an edit's new text ('edit'), at the event's time, keyed by the event id."""

    message_id: str
    event_id: str
    kind: str
    text: str | None
    version_at: datetime
    source_topic: str
    source_partition: int
    source_offset: int


def columns(row_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(row_type))
