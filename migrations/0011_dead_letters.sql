-- Dead letters as a table: one row per dead letter id, folded from wa.deadletter by the
-- deadletters_projector (projections/deadletters), so operators can ask Postgres what is broken:
--
--     select * from dead_letters where state = 'open';
--
-- The row is the letter's latest state: 'open' after a letter (the first, or a retry that
-- failed again: same input, same id), 'retried' once `msgmem dlq retry` logged a retry whose
-- outcome is not logged yet, 'resolved' once the retried record went through. Events about a
-- letter are applied in log order, once each: applied_offset is the wa.deadletter offset of
-- the last one applied (a letter's events share one partition, keyed by stage).
--
-- The error texts are the letters' own, types and field paths only (contracts/errors.py); the
-- failed input's bytes stay on the topic (`msgmem dlq show`), never here.
create table dead_letters (
    letter_id         text primary key,              -- stage:topic:partition:offset, or ...#part for one item
    stage             text not null,                 -- the process that failed (contracts/processes.py)
    state             text not null,                 -- open, retried or resolved
    error_type        text not null,                 -- the latest letter's error class
    error             text not null,                 -- the latest letter's error message
    attempts          integer not null,              -- summed over its letters
    failures          integer not null,              -- letters written for it (1, plus one per failure again)
    source_topic      text not null,                 -- the failed input's coordinates
    source_partition  integer not null,
    source_offset     bigint not null,
    part              text,                          -- the failed item's path ("messages[2]"); null: the whole record
    key               text,                          -- the input's Kafka key, as text
    value_omitted     boolean not null default false, -- the input was too large to keep in its letter
    first_seen        timestamptz not null,          -- the first letter's failed_at
    last_seen         timestamptz not null,          -- the latest letter's failed_at
    retried_by        text,                          -- who ran the latest retry
    retried_at        timestamptz,
    resolved_at       timestamptz,                   -- when the latest retry went through; null while open again
    outputs           integer,                       -- what that retry wrote
    applied_offset    bigint not null,
    updated_at        timestamptz not null default now(),
    constraint dead_letters_state_check check (state in ('open', 'retried', 'resolved'))
);
create index dead_letters_open_idx on dead_letters (stage, last_seen) where state = 'open';

alter table dead_letters enable row level security;
