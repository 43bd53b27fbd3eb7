-- Retention by policy (contracts.retention): the cut-offs wa.retention has set per chat, written
-- only by the erasures projector (projections.retention) in the transaction that applies them.
-- Read with the erasure ledger (runtime.erasure_ledger) by every projector, stage, replay and
-- rebuild: what is about a message received before messages_before is left alone, and the text
-- derived from the media of a message received before texts_before is stripped, so neither comes
-- back from the log. No personal data: the chat is its hash (contracts.erasure.subject_hash).

create table retention_cutoffs (
    chat_hash         text primary key,              -- subject_hash('chat', chat_key)
    messages_before   timestamptz,                   -- MessagesExpired: only moves forward
    texts_before      timestamptz,                   -- TextsCleared: only moves forward
    updated_at        timestamptz not null default now()
);

alter table retention_cutoffs enable row level security;

-- The sweep finds what is past a policy by the message's receipt time.
create index chat_messages_received_idx on chat_messages (received_at);

-- Where derived text is still held: the sweep of TRANSCRIPT_RETENTION_DAYS starts from these
-- rows (streams.media.retention_sweep). Partial, so they hold only the texts not cleared yet.
create index chat_messages_derived_text_idx on chat_messages (id)
    where transcript is not null or extracted_text is not null or caption_generated;
create index chat_media_derived_text_idx on chat_media (message_id)
    where transcript is not null or caption is not null or extracted_text is not null;
create index message_embeddings_derived_idx on message_embeddings (message_id) where source <> 'text';
