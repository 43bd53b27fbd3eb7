-- The messages projector's own state, which 0001 has no place for.
--
-- Events reach the projector in log order per chat, but the facts they carry do not: a
-- status, edit, deletion or reaction can be logged before the message it targets (Meta
-- never echoes Cloud API sends; webhooks race; a provider retries a delivery hours later).
-- Every merge below is therefore order-independent: the same set of events gives the same
-- row whatever order (and however often) they are applied.

-- When chats.contact_name / group_name were last taken from an event (its occurred_at),
-- so a late duplicate of an old event cannot bring back an old name.
alter table chats add column profile_at timestamptz;

-- Reactions on a message, keyed by reactor: {"<reactor>": {"emoji": "👍", "name": "Dana",
-- "at": "<occurred_at>"}}. A removed reaction stays as a tombstone with "emoji": null, so a
-- late duplicate of the older "added" cannot bring it back; active reactions are the
-- entries whose emoji is not null.
alter table chat_messages add column reactions jsonb not null default '{}'::jsonb;
alter table chat_messages add constraint chat_messages_reactions_object_check
    check (jsonb_typeof(reactions) = 'object');

-- Statuses, edits, deletions and reactions whose message has no row yet, merged with the
-- same rules as chat_messages. When the message arrives the projector folds its pending
-- row into it and deletes it, in the same transaction. Rows that stay here name messages
-- the log never carried (for example Cloud API sends not recorded through ingest).
create table chat_message_pending (
    message_id     text primary key,                 -- chat_messages.id of the target
    chat_key       text not null,
    status         text,
    status_at      timestamptz,
    status_error   text,
    edit_text      text,
    edited_at      timestamptz,
    deleted_at     timestamptz,
    reactions      jsonb not null default '{}'::jsonb,
    first_seen_at  timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint chat_message_pending_status_check
        check (status is null or status in ('pending', 'sent', 'delivered', 'read', 'played', 'failed')),
    constraint chat_message_pending_reactions_object_check check (jsonb_typeof(reactions) = 'object')
);
create index chat_message_pending_chat_idx on chat_message_pending (chat_key);

alter table chat_message_pending enable row level security;
