"""The messages projection's pure logic: a batch of decoded wa.messages events -> row operations.

No I/O. ``fold`` turns the batch into at most one upsert per chat, one insert per message and
one update per targeted message, so the store can write each table with a single bulk
statement (one statement cannot touch a row twice). What each event means for the rows:

- every event makes sure its chat exists and refreshes the chat's profile (contact phone and
  name, group flag and name: the newest event's names win, see ``ChatRow.see``);
- ``MessageReceived`` / ``MessageSent`` become a ``chat_messages`` row and move
  ``last_inbound_at`` / ``last_outbound_at`` and ``last_message_at``;
- ``MessageUnsupported`` becomes a row of type 'unsupported' with the event kept whole in
  ``raw_event``; it counts as chat activity only when it is a message (has a provider id),
  not when it stands for something else (an unknown status kind, say);
- statuses, edits, deletions and reactions become a ``MessageUpdate`` of their target;
- a message's own text (its caption, for media) and each edit's new text become a
  ``VersionRow`` of ``chat_message_versions`` (keyed by event id: the first copy wins);
- ``ConsentChanged`` sets the chat's consent (latest by occurred_at wins) and is kept as a
  ``ConsentRow`` of ``chat_consent_changes``;
- every message and consent change asks for the chat's outbound messages from its time on to be
  judged again (``judge``: the earliest such time per chat): sent while opted out, or outside
  the 24-hour window without a template (``sql.JUDGE_OUTBOUND``);
- ``ProviderEventUnsupported`` (a presence, a contact sync, an account notice: no message)
  writes nothing; it stays on wa.messages, counted by the normalize stage;
- an event whose provider did not name its chat (``chat_id == ""``) makes no chat row;
- an event past its chat's MESSAGE_RETENTION_DAYS cut-off (``Item.expired``) changes only its
  chat's row, as above: no message row, version or update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from contracts.ids import message_id
from contracts.messages import (
    MEDIA_TYPES, ChatEvent, ConsentChanged, MessageDeleted, MessageEdited, MessageEvent, MessageReceived, MessageSent,
    MessageUnsupported, ProviderEventUnsupported, ReactionAdded, ReactionRemoved, StatusUpdated,
)  # fmt: skip
from projections.items import Item
from projections.messages.rows import ChatRow, ConsentRow, MessageRow, MessageUpdate, Reaction, VersionRow

__all__ = ["RowOps", "fold", "reactor_key"]


@dataclass
class RowOps:
    chats: dict[str, ChatRow] = field(default_factory=dict)
    messages: dict[str, MessageRow] = field(default_factory=dict)
    updates: dict[str, MessageUpdate] = field(default_factory=dict)
    versions: dict[tuple[str, str], VersionRow] = field(default_factory=dict)
    consents: dict[str, ConsentRow] = field(default_factory=dict)
    judge: dict[str, datetime] = field(default_factory=dict)

    def judge_from(self, chat_key: str, at: datetime) -> None:
        since = self.judge.get(chat_key)
        if since is None or at < since:
            self.judge[chat_key] = at

    def deleted_ids(self) -> list[str]:
        """Messages the batch deletes (their versions go when DELETED_MESSAGES=redact)."""
        return sorted(u.message_id for u in self.updates.values() if u.deleted_at is not None)


def fold(items: Sequence[Item[MessageEvent]]) -> RowOps:
    ops = RowOps()
    for item in items:
        event = item.event
        if isinstance(event, ProviderEventUnsupported):
            continue
        chat = _chat(ops, event)
        if item.expired:
            _chat_only(chat, event)
            if isinstance(event, ConsentChanged):  # consent history outlives the messages, as the chat's consent does
                _consent(ops, item, event)
        elif isinstance(event, MessageReceived | MessageSent):
            _message(ops, _message_row(item, event))
            text = event.caption if event.message_type in MEDIA_TYPES else event.text
            if text is not None:
                _version(ops, item, event.message_id, "original", text)
            chat.message_at(event.direction, event.occurred_at)
            _judge(ops, event)
        elif isinstance(event, MessageUnsupported):
            _message(ops, _unsupported_row(item, event))
            if event.provider_message_id:
                chat.message_at(event.direction, event.occurred_at)
                _judge(ops, event)
        elif isinstance(event, StatusUpdated):
            _update(ops, event).status_seen(event.status, event.occurred_at, _errors(event))
        elif isinstance(event, MessageEdited):
            _update(ops, event).edit_seen(event.new_text, event.occurred_at)
            _version(ops, item, event.target_message_id, "edit", event.new_text)
        elif isinstance(event, MessageDeleted):
            _update(ops, event).deletion_seen(event.occurred_at)
        elif isinstance(event, ReactionAdded | ReactionRemoved):
            emoji = event.emoji if isinstance(event, ReactionAdded) else None
            reaction = Reaction(emoji, event.reactor_name, event.occurred_at)
            _update(ops, event).reaction_seen(reactor_key(event), reaction)
        elif isinstance(event, ConsentChanged):
            chat.consent(event.state, event.occurred_at)
            _consent(ops, item, event)
            _judge(ops, event)
        else:  # a new event type in contracts that this projection does not know yet
            raise TypeError(f"messages projection cannot apply {type(event).__name__}")
    return ops


def _chat_only(chat: ChatRow, event: MessageEvent) -> None:
    """An event past its chat's MESSAGE_RETENTION_DAYS cut-off: its message rows are gone for
    good, but the chat's row keeps what the event said about the chat (profile, seen by
    ``_chat``; activity; consent), as it did when the event was first applied; the merges are
    idempotent, so applying it again changes nothing."""
    if isinstance(event, MessageReceived | MessageSent) or (
        isinstance(event, MessageUnsupported) and event.provider_message_id
    ):
        chat.message_at(event.direction, event.occurred_at)
    elif isinstance(event, ConsentChanged):
        chat.consent(event.state, event.occurred_at)


def reactor_key(event: ReactionAdded | ReactionRemoved) -> str:
    """Who reacted: their id, else the side of the chat (1:1 chats have one person per side)."""
    return event.reactor_id or ("business" if event.direction == "outbound" else "contact")


def _chat(ops: RowOps, event: ChatEvent) -> ChatRow:
    if not event.chat_id:  # the provider did not say which chat: nothing to upsert, a row kept nowhere
        return ChatRow(event.chat_key, event.provider, event.channel_id, event.chat_id)
    chat = ops.chats.get(event.chat_key)
    if chat is None:
        chat = ops.chats[event.chat_key] = ChatRow(event.chat_key, event.provider, event.channel_id, event.chat_id)
    chat.see(is_group=event.is_group, contact_phone=event.contact_phone, contact_name=event.contact_name,
             group_name=event.group_name, at=event.occurred_at)  # fmt: skip
    return chat


def _consent(ops: RowOps, item: Item[MessageEvent], event: ConsentChanged) -> None:
    ops.consents.setdefault(event.event_id, ConsentRow(
        event.event_id, event.chat_key, event.state, event.occurred_at, event.message_id,
        item.topic, item.partition, item.offset,
    ))  # fmt: skip


def _judge(ops: RowOps, event: ChatEvent) -> None:
    if event.chat_id:  # a chat with a row
        ops.judge_from(event.chat_key, event.occurred_at)


def _message(ops: RowOps, row: MessageRow) -> None:
    existing = ops.messages.get(row.id)
    if existing is None:
        ops.messages[row.id] = row
    else:
        existing.absorb(row)


def _version(ops: RowOps, item: Item[MessageEvent], message: str, kind: str, text: str | None) -> None:
    """First copy of an event wins, as ``on conflict do nothing`` does across batches."""
    event = item.event
    ops.versions.setdefault((message, event.event_id), VersionRow(
        message, event.event_id, kind, text, event.occurred_at, item.topic, item.partition, item.offset,
    ))  # fmt: skip


def _update(ops: RowOps, event: StatusUpdated | MessageEdited | MessageDeleted | ReactionAdded | ReactionRemoved
            ) -> MessageUpdate:  # fmt: skip
    update = ops.updates.get(event.target_message_id)
    if update is None:
        update = ops.updates[event.target_message_id] = MessageUpdate(event.target_message_id, event.chat_key)
    return update


def _message_row(item: Item[MessageEvent], event: MessageReceived | MessageSent) -> MessageRow:
    return MessageRow(
        id=event.message_id, chat_key=event.chat_key, provider=event.provider, channel_id=event.channel_id,
        provider_message_id=event.provider_message_id, origin=event.origin, direction=event.direction,
        message_type=event.message_type, provider_timestamp=event.occurred_at, received_at=event.received_at,
        raw_event=item.value.decode(), source_topic=item.topic, source_partition=item.partition,
        source_offset=item.offset, sender_id=event.sender_id, sender_name=event.sender_name, body=event.text,
        caption=event.caption, reply_to_provider_message_id=event.reply_to_provider_message_id,
        forwarded=event.forwarded, template=event.template if isinstance(event, MessageSent) else None,
    )  # fmt: skip


def _unsupported_row(item: Item[MessageEvent], event: MessageUnsupported) -> MessageRow:
    """No provider id (it stood for something other than a message): keyed by its event id."""
    pmid = event.provider_message_id
    row_id = event.message_id or (message_id(event.provider, event.channel_id, pmid) if pmid else event.event_id)
    return MessageRow(
        id=row_id, chat_key=event.chat_key, provider=event.provider, channel_id=event.channel_id,
        provider_message_id=pmid or f"event:{event.event_id}", origin=event.origin,
        direction=event.direction, message_type=event.message_type, provider_timestamp=event.occurred_at,
        received_at=event.received_at, raw_event=item.value.decode(), source_topic=item.topic,
        source_partition=item.partition, source_offset=item.offset, sender_id=event.sender_id,
        sender_name=event.sender_name,
    )  # fmt: skip


def _errors(event: StatusUpdated) -> str | None:
    if not event.errors:
        return None
    return orjson.dumps([e.model_dump(exclude_none=True) for e in event.errors]).decode()
