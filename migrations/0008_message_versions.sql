-- Edit history: every version of a message's text with its time, written by the messages
-- projector from wa.messages in the same transaction as chat_messages (projections/messages).
--
-- One row per event that carried a text of the message: the message itself ('original', its
-- text or, for media, its caption, at the message's time) and each MessageEdited ('edit', the
-- new text at the edit's time; null text: the edit cleared it). Keyed by the event's
-- deterministic id, so a redelivery or a replay lands on the same row (first copy wins, as on
-- chat_messages). No foreign key to chat_messages: an edit logged before its message is kept
-- here at once. chat_messages shows the latest version; this table keeps them all.
--
-- A deletion keeps the versions, unless DELETED_MESSAGES=redact: then the projector deletes
-- every version of a deleted message, and writes none for it later.
create table chat_message_versions (
    message_id        text not null,                 -- chat_messages.id
    event_id          text not null,                 -- the wa.messages event that carried the text
    kind              text not null,                 -- original or edit
    text              text,
    version_at        timestamptz not null,          -- the event's occurred_at
    source_topic      text not null,
    source_partition  integer not null,
    source_offset     bigint not null,
    created_at        timestamptz not null default now(),
    constraint chat_message_versions_pkey primary key (message_id, event_id),
    constraint chat_message_versions_kind_check check (kind in ('original', 'edit'))
);

alter table chat_message_versions enable row level security;
